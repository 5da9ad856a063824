"""openstacksdk's own functional tests of TaaS (openstack/openstacksdk, openstack/tests/functional/network/v2/
test_taas.py, class TestTapService: find, get, list and update of tap services and of tap flows, eight
scenarios), run unchanged against the device as a real process.

Only the port fixture is adapted. Upstream, setUp makes two networks and a port on each as the user, and
tearDown deletes them as the user. This device has no networks: a port stands for an interface of its host
(`binding:profile`), and only admins make and delete ports (for the user's project, through /v2.0/ports). The
rest of setUp and tearDown (the extension check, the tap service and tap flow made and deleted as the user,
with ignore_missing=False) and every test body are upstream's, in pytest's form (a fixture for
setUp/tearDown, assert for assertEqual/assertIn/assertIsNone)."""

# ruff: noqa: SIM300 (upstream's assertEqual(expected, actual) order, kept so the port reads as the original)

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ..support.daemon import Daemon, running

openstack = pytest.importorskip("openstack", reason="openstacksdk is not installed (pip install -e '.[test]')")
from openstack.network.v2 import port as _port  # noqa: E402
from openstack.network.v2 import tap_flow as _tap_flow  # noqa: E402
from openstack.network.v2 import tap_service as _tap_service  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with running(tmp_path_factory.mktemp("sdkfunctional"), device_name="tester") as d:
        yield d


def cloud(device: Daemon, token: str) -> Any:
    return openstack.connect(auth_type="admin_token", auth={"endpoint": device.url + "/v2.0", "token": token})


class TestTapService:
    @pytest.fixture(autouse=True)
    def fixture(self, device: Daemon) -> Iterator[None]:
        self.user_cloud = cloud(device, "tok-alice")  # a member of project alice, as upstream's user_cloud
        self.admin_cloud = cloud(device, "tok-admin")
        self.setUp()
        yield
        self.tearDown()

    @staticmethod
    def getUniqueString() -> str:  # noqa: N802 (upstream's name)
        return uuid.uuid4().hex

    def setUp(self) -> None:  # noqa: N802
        if not self.user_cloud.network.find_extension("taas"):
            pytest.skip("Neutron Tap-as-a-service Extension disabled")

        self.TAP_S_NAME = 'my_service' + self.getUniqueString()
        self.TAP_F_NAME = 'my_flow' + self.getUniqueString()

        # adapted: the ports, made by an admin for the user's project on interfaces of the host (no networks)
        port = self.admin_cloud.network.create_port(project_id="alice", binding_profile={"interface": "lo"})
        assert isinstance(port, _port.Port)
        self.SERVICE_PORT_ID = port.id

        port = self.admin_cloud.network.create_port(project_id="alice", binding_profile={"interface": "lo"})
        assert isinstance(port, _port.Port)
        self.FLOW_PORT_ID = port.id

        tap_service = self.user_cloud.network.create_tap_service(
            name=self.TAP_S_NAME, port_id=self.SERVICE_PORT_ID
        )
        assert isinstance(tap_service, _tap_service.TapService)
        self.TAP_SERVICE = tap_service

        tap_flow = self.user_cloud.network.create_tap_flow(
            name=self.TAP_F_NAME,
            tap_service_id=self.TAP_SERVICE.id,
            source_port=self.FLOW_PORT_ID,
            direction='BOTH',
        )
        assert isinstance(tap_flow, _tap_flow.TapFlow)
        self.TAP_FLOW = tap_flow

    def tearDown(self) -> None:  # noqa: N802
        sot = self.user_cloud.network.delete_tap_flow(
            self.TAP_FLOW.id, ignore_missing=False
        )
        assert sot is None
        sot = self.user_cloud.network.delete_tap_service(
            self.TAP_SERVICE.id, ignore_missing=False
        )
        assert sot is None
        # adapted: an admin deletes the ports (there are no networks to delete)
        sot = self.admin_cloud.network.delete_port(self.SERVICE_PORT_ID)
        assert sot is None
        sot = self.admin_cloud.network.delete_port(self.FLOW_PORT_ID)
        assert sot is None

    def test_find_tap_service(self) -> None:
        sot = self.user_cloud.network.find_tap_service(self.TAP_SERVICE.name)
        assert self.SERVICE_PORT_ID == sot.port_id
        assert self.TAP_S_NAME == sot.name

    def test_get_tap_service(self) -> None:
        sot = self.user_cloud.network.get_tap_service(self.TAP_SERVICE.id)
        assert self.SERVICE_PORT_ID == sot.port_id
        assert self.TAP_S_NAME == sot.name

    def test_list_tap_services(self) -> None:
        tap_service_ids = [
            ts.id for ts in self.user_cloud.network.tap_services()
        ]
        assert self.TAP_SERVICE.id in tap_service_ids

    def test_update_tap_service(self) -> None:
        description = 'My tap service'
        sot = self.user_cloud.network.update_tap_service(
            self.TAP_SERVICE.id, description=description
        )
        assert description == sot.description

    def test_find_tap_flow(self) -> None:
        sot = self.user_cloud.network.find_tap_flow(self.TAP_FLOW.name)
        assert self.FLOW_PORT_ID == sot.source_port
        assert self.TAP_SERVICE.id == sot.tap_service_id
        assert 'BOTH' == sot.direction
        assert self.TAP_F_NAME == sot.name

    def test_get_tap_flow(self) -> None:
        sot = self.user_cloud.network.get_tap_flow(self.TAP_FLOW.id)
        assert self.FLOW_PORT_ID == sot.source_port
        assert self.TAP_F_NAME == sot.name
        assert self.TAP_SERVICE.id == sot.tap_service_id
        assert 'BOTH' == sot.direction

    def test_list_tap_flows(self) -> None:
        tap_flow_ids = [tf.id for tf in self.user_cloud.network.tap_flows()]
        assert self.TAP_FLOW.id in tap_flow_ids

    def test_update_tap_flow(self) -> None:
        description = 'My tap flow'
        sot = self.user_cloud.network.update_tap_flow(
            self.TAP_FLOW.id, description=description
        )
        assert description == sot.description


def test_the_sdk_reads_ports_standard_attributes(device: Daemon) -> None:
    """Beyond upstream's scenarios: the SDK's Port reads the attributes item 8 adds, and updates a port with
    If-Match through its own if_revision argument."""
    net = cloud(device, "tok-admin").network
    port = net.create_port(project_id="alice", name="std", binding_profile={"interface": "lo"})
    assert (port.revision_number, port.tags, port.binding_host_id) == (1, [], "tester")
    assert port.created_at and port.updated_at == port.created_at
    changed = net.update_port(port, name="std2", if_revision=1)
    assert (changed.name, changed.revision_number) == ("std2", 2)
    # by id: the SDK keeps If-Match on the object as a header attribute and sends it again only when it changes
    with pytest.raises(openstack.exceptions.HttpException) as err:
        net.update_port(port.id, name="std3", if_revision=1)
    assert err.value.status_code == 412 and "current revision is 2" in str(err.value)
    net.delete_port(port)
