"""The reconciler's full passes (opentap/taas/reconcile.py) on the in-memory driver: drift repaired and counted,
our unwanted rules removed, and a restart that adopts what the kernel already does instead of reinstalling it;
another device's rules and an earlier version's are judged as the design says. The same against the kernel:
tests/system/test_datapath_api.py and test_datapath_owner.py."""

from __future__ import annotations

from pathlib import Path

from opentap.datapath.base import Mirror
from opentap.taas.reconcile import Reconciler

from ..support.memdriver import Datapath, Kernel, MemDriver, Rule
from ..support.taasdb import TaasRows, database

NEIGHBOUR = b"other-device"  # another OpenTap on the same host: its own mark


def test_a_rule_lost_or_changed_behind_our_back_is_repaired_by_a_full_pass(taas: TaasRows, kernel: Kernel,
                                                                           datapath: Datapath) -> None:
    r, _ = datapath()
    _, flow = taas.monitored(direction="OUT")
    r.run_once()
    slot, wanted = taas.flow_row(flow).slot, kernel.marked()
    kernel.lose("vm1-tap", slot)
    r.run_once(full=False)  # a quick pass trusts what it installed: it does not look
    assert kernel.marked() == {} and r.drift == 0
    r.run_once(full=True)
    assert kernel.marked() == wanted and r.drift == 1 and taas.status(flow) == ("ACTIVE", None)
    kernel.change("vm1-tap", slot, target="vm2-tap")  # copying into the wrong place now
    r.run_once(full=True)
    assert kernel.marked() == wanted and r.drift == 2 and taas.status(flow) == ("ACTIVE", None)


def test_an_unwanted_rule_of_ours_is_removed_and_counted(taas: TaasRows, kernel: Kernel, datapath: Datapath) -> None:
    r, driver = datapath()
    _, flow = taas.monitored()
    r.run_once()
    slot, wanted = taas.flow_row(flow).slot, kernel.marked()
    driver.install(Mirror(slot + 1, "vm2-tap", "mon-tap", "IN"))  # as if left by a flow deleted long ago
    kernel.changes.clear()
    r.run_once(full=True)
    assert kernel.marked() == wanted and r.drift == 1
    assert kernel.changes == [("remove", "vm2-tap", slot + 1)]  # and the wanted rule was left as it was


def test_a_restart_adopts_the_rules_in_the_kernel_without_reinstalling(taas: TaasRows, kernel: Kernel,
                                                                       datapath: Datapath) -> None:
    before, _ = datapath()
    _, flow = taas.monitored()
    _, tagged = taas.monitored(source="vm2-tap", direction="IN", vlan_filter="100")
    before.run_once()
    wanted = kernel.marked()
    kernel.changes.clear()
    after, _ = datapath()  # the daemon restarted: a new driver and reconciler, the same kernel
    after.run_once()
    assert kernel.changes == [] and kernel.marked() == wanted and after.drift == 0
    assert taas.status(flow) == taas.status(tagged) == ("ACTIVE", None)
    after.run_once(full=False)  # trusted from then on, as if it had installed them itself
    assert kernel.changes == []


def test_a_rule_found_changed_at_a_restart_is_reinstalled(taas: TaasRows, kernel: Kernel, datapath: Datapath) -> None:
    before, _ = datapath()
    _, flow = taas.monitored(direction="OUT")
    before.run_once()
    slot, wanted = taas.flow_row(flow).slot, kernel.marked()
    kernel.change("vm1-tap", slot, direction="BOTH")  # while the daemon was down
    after, _ = datapath()
    after.run_once()
    assert kernel.marked() == wanted and taas.status(flow) == ("ACTIVE", None)
    assert kernel.changes[-1] == ("install", "vm1-tap", slot)


def test_a_lost_database_clears_our_rules_and_no_one_elses(taas: TaasRows, kernel: Kernel, datapath: Datapath,
                                                           tmp_path: Path) -> None:
    before, _ = datapath()
    _, flow = taas.monitored()
    before.run_once()
    slot = taas.flow_row(flow).slot
    neighbour = MemDriver(kernel, NEIGHBOUR)
    neighbour.install(Mirror(slot, "vm1-tap", "mon-tap", "BOTH"))  # the same interface and slot as ours
    theirs = kernel.marked(NEIGHBOUR)
    (tmp_path / "new").mkdir()
    with database(tmp_path / "new") as empty:  # restarted on an empty database, the same device id
        after = Reconciler(empty, MemDriver(kernel))
        after.run_once()
    assert kernel.marked() == {} and after.drift == 1  # ours: wanted by no flow, so removed
    assert kernel.marked(NEIGHBOUR) == theirs  # another device's: never touched


def test_an_earlier_versions_unmarked_rules_are_replaced_once(taas: TaasRows, kernel: Kernel,
                                                              datapath: Datapath) -> None:
    _, flow = taas.monitored()
    _, other = taas.monitored(source="vm2-tap")
    slot, other_slot = taas.flow_row(flow).slot, taas.flow_row(other).slot
    kernel.unmarked[("vm1-tap", slot)] = Rule("mon-tap", "BOTH")  # a version before marks made this flow's
    elsewhere = {("vm2-tap", other_slot): Rule("vm1-tap", "IN")}  # copies somewhere else: not ours to judge
    kernel.unmarked.update(elsewhere)
    r, _ = datapath()
    r.run_once()
    assert kernel.unmarked == elsewhere and set(kernel.marked()) == {("vm1-tap", slot), ("vm2-tap", other_slot)}
    assert taas.status(flow) == taas.status(other) == ("ACTIVE", None)
    kernel.lose("vm1-tap", slot)  # later, ours goes and an unmarked rule appears in its place: someone else's
    kernel.unmarked[("vm1-tap", slot)] = Rule("mon-tap", "BOTH")
    r.run_once(full=True)
    assert ("vm1-tap", slot) in kernel.unmarked and ("vm1-tap", slot) in kernel.marked() and r.drift == 1
