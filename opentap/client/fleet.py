"""The same capture on many devices at once, the data as one DataFrame with a `device` column.

Errors are per device: a device that cannot be reached, refuses the request (4xx), or whose capture fails is
put in the fleet capture's `errors` (device name -> DeviceError) and left out of what follows; the others go
on. `retrieve()` warns (FleetWarning) when some devices are missing from its DataFrame, and only raises
(FleetError) when no device at all has anything to give."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, TypeVar

from .device import Capture, Device
from .progress import WindowBar
from .times import TimeLike, parse_time
from .transport import DeviceError, Transport

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")
R = TypeVar("R")
MAX_THREADS = 32


class FleetError(Exception):
    """Every device failed; `errors` says why for each."""

    def __init__(self, what: str, errors: dict[str, DeviceError]) -> None:
        super().__init__(f"{what} failed on every device: " + "; ".join(str(e) for e in errors.values()))
        self.errors = errors


class FleetWarning(UserWarning):
    """Some devices failed; their errors are in the fleet capture's `errors`."""


class Fleet:
    """Devices to capture on together. Each item is a Device, or what makes one (a URL, the original
    client's dictionary, a Transport), made with device_options (token=, timeout=, …). Names must differ:
    they key the errors and fill the `device` column (give name= where two devices share a host)."""

    def __init__(self, devices: Iterable[Device | str | Mapping[str, Any] | Transport],
                 **device_options: Any) -> None:
        self.devices = [d if isinstance(d, Device) else Device(d, **device_options) for d in devices]
        names = [d.name for d in self.devices]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"devices in a fleet need different names; {', '.join(twice)} is used twice "
                             "(name them with Device(url, name=...))")

    def __len__(self) -> int:
        return len(self.devices)

    def __iter__(self) -> Iterator[Device]:
        return iter(self.devices)

    def close(self) -> None:
        for d in self.devices:
            d.close()

    def capture(self, type: str, start: TimeLike, stop: TimeLike, *,
                observationpt: str | Mapping[str, str] | None = None, **options: Any) -> FleetCapture:
        """Device.capture on every device at once, over the same window. observationpt: one name for all,
        or device name -> point (a device not in it uses its default). Raises FleetError if no device
        scheduled it; otherwise the ones that did not are in the result's `errors`."""
        now = time.time()  # one window for all devices, however long each takes to answer
        first, last = parse_time(start, now), parse_time(stop, now)

        def schedule(device: Device) -> Capture:
            point = observationpt.get(device.name) if isinstance(observationpt, Mapping) else observationpt
            return device.capture(type, first, last, observationpt=point, **options)

        captures, errors = each(schedule, {d.name: d for d in self.devices})
        if not captures:
            raise FleetError(f"scheduling the {type} capture", errors)
        return FleetCapture(type, captures, errors)


class FleetCapture:
    """One capture per device. `captures`: device name -> Capture, for the devices where it was scheduled;
    `errors`: device name -> DeviceError, for every device that failed at any step so far."""

    def __init__(self, type: str, captures: dict[str, Capture], errors: dict[str, DeviceError]) -> None:
        self.type, self.captures, self.errors = type, captures, dict(errors)

    def __repr__(self) -> str:
        return f"<FleetCapture {self.type} on {', '.join(self.captures)}; errors: {', '.join(self.errors) or 'none'}>"

    @property
    def working(self) -> dict[str, Capture]:
        """The captures of the devices without an error."""
        return {n: c for n, c in self.captures.items() if n not in self.errors}

    def wait(self, progress: bool = True, timeout: float | None = None) -> dict[str, dict[str, Any]]:
        """Wait for every working device's capture to end (Capture.wait on each, at once); returns their final
        statuses. One progress bar for the fleet on stderr if progress."""
        todo = self.working
        bar = None
        if progress and todo:
            starts = [c.info.get("startTime", time.time()) for c in todo.values()]
            stops = [c.info.get("stopTime", time.time()) for c in todo.values()]
            bar = WindowBar(f"{self.type} on {len(todo)} devices", min(starts), max(stops))

        def tick(done: int) -> None:
            if bar:
                bar.update(f"{done}/{len(todo)} finished")

        def finish(c: Capture) -> dict[str, Any]:
            return c.wait(progress=False, timeout=timeout)

        try:
            results, errors = each(finish, todo, tick)
        finally:
            if bar:
                bar.close(f"{len(todo)}/{len(todo)} finished")
        self.errors.update(errors)
        return results

    def retrieve(self) -> pd.DataFrame:
        """Every working device's data in one DataFrame, a `device` column first."""
        import pandas as pd

        parts, errors = each(Capture.retrieve, self.working)
        self.errors.update(errors)
        if not parts:
            raise FleetError(f"retrieving the {self.type} capture", self.errors)
        if self.errors:
            total = len(self.captures.keys() | self.errors.keys())
            warnings.warn(f"{len(self.errors)} of {total} devices left out: "
                          + "; ".join(str(e) for e in self.errors.values()), FleetWarning, stacklevel=2)
        named = [df.assign(device=name)[["device", *df.columns]] for name, df in parts.items()]
        out = pd.concat(named, ignore_index=True)
        out["device"] = out["device"].astype(str)  # the text dtype of the other columns (object or str)
        return out

    def delete(self) -> dict[str, dict[str, Any] | None]:
        """Cancel (running) or delete (finished) every device's capture; failures go to `errors`."""

        results, errors = each(Capture.delete, self.captures)
        self.errors.update(errors)
        return results


def each(fn: Callable[[T], R], items: Mapping[str, T],
         tick: Callable[[int], None] | None = None) -> tuple[dict[str, R], dict[str, DeviceError]]:
    """fn(item) for every named item in threads; results and DeviceErrors by name, in the items' order.
    tick(finished so far) is called about twice a second while waiting."""
    if not items:
        return {}, {}
    with ThreadPoolExecutor(min(len(items), MAX_THREADS), thread_name_prefix="opentap-fleet") as pool:
        futures: dict[str, Future[R]] = {name: pool.submit(fn, item) for name, item in items.items()}
        pending = set(futures.values())
        while pending:
            if tick:
                tick(len(futures) - len(pending))
            _, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
    results: dict[str, R] = {}
    errors: dict[str, DeviceError] = {}
    for name, future in futures.items():
        try:
            results[name] = future.result()
        except DeviceError as e:
            errors[name] = e
        except TimeoutError as e:  # Capture.wait's: that device took too long
            errors[name] = DeviceError(name, 0, str(e).removeprefix(f"{name}: "))
    return results, errors
