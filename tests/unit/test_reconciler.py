"""The reconciler's passes (opentap/taas/reconcile.py) on the in-memory driver: a new flow ACTIVE in one quick
pass, the kernel refusing, interfaces missing and coming back, tap service status, deletes. Drift and restarts:
test_reconciler_drift.py. The same against the kernel: tests/system/test_datapath_*.py."""

from __future__ import annotations

import errno

from opentap.taas.attributes import TAP_FLOWS, TAP_SERVICES

from ..support.memdriver import Datapath, Kernel, Rule, installs
from ..support.taasdb import TaasRows


def test_a_new_flow_is_active_after_one_quick_pass(taas: TaasRows, kernel: Kernel, datapath: Datapath) -> None:
    r, driver = datapath()
    r.run_once()  # the first pass is a full one: it reads every interface (nothing of ours there yet)
    assert driver.surveys == len(kernel.links)
    _, flow = taas.monitored(direction="IN", vlan_filter="9,18-27")
    r.run_once(full=False)
    assert taas.status(flow) == ("ACTIVE", None)
    slot = taas.flow_row(flow).slot
    assert kernel.marked() == {("vm1-tap", slot): Rule("mon-tap", "IN", False, "9,18-27")}
    assert driver.surveys == len(kernel.links)  # quick: nothing read back but the new mirror's own rules
    r.run_once(full=False)
    r.run_once(full=True)
    assert installs(kernel.changes) == [("vm1-tap", slot)]  # installed once, then trusted and found as left


def test_a_host_side_port_is_mirrored_as_the_host_sees_it(taas: TaasRows, kernel: Kernel, datapath: Datapath) -> None:
    kernel.plug("eno1")
    r, _ = datapath()
    service = taas.service(taas.port("mon-tap"))
    flow = taas.flow(service, taas.port("eno1", host_side=True), direction="OUT")
    r.run_once()
    assert kernel.marked() == {("eno1", taas.flow_row(flow).slot): Rule("mon-tap", "OUT", True, None)}


def test_a_tap_service_is_active_while_its_interface_is_up(taas: TaasRows, kernel: Kernel, datapath: Datapath) -> None:
    r, _ = datapath()
    service, gone = taas.service(taas.port("mon-tap")), taas.service(taas.port("nosuch0"))
    r.run_once()
    assert (taas.service_status(service), taas.service_status(gone)) == ("ACTIVE", "DOWN")
    kernel.set_up("mon-tap", False)
    r.run_once(full=False)
    assert taas.service_status(service) == "DOWN"
    kernel.set_up("mon-tap", True)
    r.run_once(full=False)
    assert taas.service_status(service) == "ACTIVE"


def test_the_kernel_refusing_is_an_error_with_its_reason_and_retried(taas: TaasRows, kernel: Kernel,
                                                                     datapath: Datapath) -> None:
    r, _ = datapath()
    _, flow = taas.monitored()
    kernel.refuse(OSError(errno.EOPNOTSUPP, "Operation not supported"))
    r.run_once()
    assert taas.status(flow) == ("ERROR", "the kernel refused the mirror: [Errno 95] Operation not supported")
    assert kernel.marked() == {}
    r.run_once(full=False)  # the next pass tries again, and the kernel takes it this time
    assert taas.status(flow) == ("ACTIVE", None) and len(kernel.marked()) == 1
    kernel.lose("vm1-tap", taas.flow_row(flow).slot)  # a repair refused too: a quick pass must not trust it
    kernel.refuse()
    r.run_once(full=True)
    assert taas.status(flow) == ("ERROR", "the kernel refused the mirror: [Errno 1] Operation not permitted")
    r.run_once(full=False)
    assert taas.status(flow) == ("ACTIVE", None) and len(kernel.marked()) == 1


def test_a_missing_interface_is_an_error_until_it_returns(taas: TaasRows, kernel: Kernel, datapath: Datapath) -> None:
    kernel.unplug("vm1-tap")
    r, _ = datapath()
    _, flow = taas.monitored()
    r.run_once()
    assert taas.status(flow) == ("ERROR", "the source port's interface vm1-tap does not exist")
    kernel.plug("vm1-tap")
    r.run_once(full=False)
    assert taas.status(flow) == ("ACTIVE", None)
    mirrored = kernel.marked()
    kernel.unplug("vm1-tap")  # the VM's interface is deleted, and its rules with it
    r.run_once(full=False)
    assert taas.status(flow) == ("ERROR", "the source port's interface vm1-tap does not exist")
    kernel.plug("vm1-tap")  # ... and made again: the flow's rules come back (that is no drift)
    r.run_once(full=False)
    assert taas.status(flow) == ("ACTIVE", None) and kernel.marked() == mirrored and r.drift == 0
    kernel.unplug("mon-tap")
    r.run_once(full=False)
    assert taas.status(flow) == ("ERROR", "the tap service port's interface mon-tap does not exist")


def test_a_port_mirrored_into_itself_is_an_error(taas: TaasRows, kernel: Kernel, datapath: Datapath) -> None:
    r, _ = datapath()
    _, flow = taas.monitored(source="mon-tap")  # two ports on one interface: copies would loop back into it
    r.run_once()
    assert taas.status(flow) == ("ERROR", "a port cannot be mirrored to itself (mon-tap)")
    assert kernel.marked() == {}


def test_a_deleted_flow_loses_its_rules_then_its_row(taas: TaasRows, kernel: Kernel, datapath: Datapath) -> None:
    r, _ = datapath()
    _, flow = taas.monitored()
    _, kept = taas.monitored(source="vm2-tap")
    r.run_once()
    slot, kept_slot = taas.flow_row(flow).slot, taas.flow_row(kept).slot
    taas.delete(TAP_FLOWS, flow)
    assert taas.status(flow)[0] == "PENDING_DELETE" and ("vm1-tap", slot) in kernel.marked()
    r.run_once(full=False)
    assert taas.flow_row(flow) is None and set(kernel.marked()) == {("vm2-tap", kept_slot)}
    assert kernel.changes[-1] == ("remove", "vm1-tap", slot) and r.drift == 0
    assert taas.status(kept) == ("ACTIVE", None)


def test_flows_deleted_with_their_tap_service_lose_their_rules(taas: TaasRows, kernel: Kernel,
                                                               datapath: Datapath) -> None:
    r, _ = datapath()
    service, flow = taas.monitored()
    r.run_once()
    assert len(kernel.marked()) == 1
    taas.delete(TAP_SERVICES, service)  # its flows' rows go at once, without PENDING_DELETE
    assert taas.flow_row(flow) is None
    r.run_once(full=False)
    assert kernel.marked() == {} and r.drift == 0  # what this device installed and no flow wants: not drift
