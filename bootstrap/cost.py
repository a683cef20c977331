"""What a job pod bills as on ECI: its containers' resources rounded up to an ECI spec (pure).

Without ``k8s.aliyun.com/eci-use-specs`` ECI sizes a pod by the sum of its containers'
limits (requests where a container has no limit) and rounds that up to the next vCPU/memory
spec it supports; the pod is billed per second for that spec. Source: Alibaba Cloud ECI,
"Specify vCPU and memory to create an instance" (help.aliyun.com document_detail/451623,
English: alibabacloud.com/help/en/eci/user-guide/specify-the-number-of-vcpus-and-memory-
size-to-create-an-elastic-container-instance, last updated 2026-06-20), table "Specifications
supported in all regions". Some regions add specs in between (e.g. 2 vCPU / 6 GiB); they are
left out on purpose, so the spec shown here is what every region bills at most.

The kubernetes executor builds each job pod from a build container, a helper container, one
container per CI service, and an init container (``init-permissions``) that runs before them
with the helper's resources (``executors/kubernetes/kubernetes.go@v18.11.4``,
``buildPermissionsInitContainer``). An init container runs alone, so a pod needs the larger
of the init container and the sum of the others; with the helper's resources that is the sum.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bootstrap.validators import quantity_value

if TYPE_CHECKING:  # config imports this module to validate eci.use_specs
    from bootstrap.config import ExecutorSettings, Settings

MIB = 2**20
# (millicores, MiB) of every vCPU/memory spec ECI offers in all regions (see the module doc).
_TABLE_GIB: tuple[tuple[float, tuple[float, ...]], ...] = (
    (0.25, (0.5, 1)),
    (0.5, (1, 2)),
    (1, (2, 4, 8)),
    (2, (1, 2, 4, 8, 16)),
    (4, (2, 4, 8, 16, 32)),
    (8, (4, 8, 16, 32, 64)),
    (12, (12, 24, 48, 96)),
    (16, (16, 32, 64, 128)),
    (24, (24, 48, 96, 192)),
    (32, (32, 64, 128, 256)),
    (52, (96, 192, 384)),
    (64, (128, 256, 512)),
)
# A share of a spec left unused above which the render warns (a quarter, per the issue).
WASTE_WARNING = 0.25


@dataclass(frozen=True, order=True)
class Spec:
    """An ECI vCPU/memory spec, or any amount of CPU and memory, in millicores and MiB."""

    millicores: int
    mib: int

    @property
    def label(self) -> str:
        """``2 vCPU / 4 GiB``."""
        return f"{_number(self.millicores / 1000)} vCPU / {_number(self.mib / 1024)} GiB"

    @property
    def annotation(self) -> str:
        """The spec as ``k8s.aliyun.com/eci-use-specs`` writes it: ``2-4Gi``."""
        return f"{_number(self.millicores / 1000)}-{_number(self.mib / 1024)}Gi"


ECI_SPECS: tuple[Spec, ...] = tuple(
    sorted(Spec(round(cpu * 1000), round(mem * 1024)) for cpu, mems in _TABLE_GIB for mem in mems)
)


def _number(value: float) -> str:
    return f"{value:g}"


def millicores(quantity: str) -> int:
    """A CPU quantity in millicores, rounded up as Kubernetes does."""
    return math.ceil(round(quantity_value(quantity) * 1000, 6))


def mebibytes(quantity: str) -> int:
    """A memory quantity in MiB, rounded up."""
    return math.ceil(round(quantity_value(quantity) / MIB, 6))


def eci_spec(needed: Spec) -> Spec | None:
    """The smallest ECI spec that holds ``needed`` (fewest vCPUs, then least memory).

    None when no spec is large enough (ECI refuses such a pod).
    """
    for spec in ECI_SPECS:
        if spec.millicores >= needed.millicores and spec.mib >= needed.mib:
            return spec
    return None


@dataclass(frozen=True)
class Container:
    """One container of a job pod and the resources ECI counts for it (limits)."""

    name: str
    cpu_key: str
    memory_key: str
    millicores: int
    mib: int


def job_pod_containers(executor: ExecutorSettings, services: int = 0) -> list[Container]:
    """The containers of a job pod with ``services`` CI services, as ECI counts them."""

    def container(name: str, prefix: str) -> Container:
        cpu, memory = f"{prefix}cpu_limit", f"{prefix}memory_limit"
        return Container(
            name,
            f"executor.{cpu}",
            f"executor.{memory}",
            millicores(getattr(executor, cpu)),
            mebibytes(getattr(executor, memory)),
        )

    containers = [container("build", ""), container("helper", "helper_")]
    containers += [container(f"svc-{i}", "service_") for i in range(services)]
    return containers


@dataclass(frozen=True)
class Billing:
    """What one job pod bills as, and how much of the spec its containers leave unused."""

    services: int
    containers: tuple[Container, ...]
    needed: Spec
    spec: Spec | None
    # Set when eci.use_specs decides instead of the containers' sum.
    use_specs: tuple[str, ...] = ()
    arm64: bool = False
    suggestions: tuple[str, ...] = field(default_factory=tuple)

    @property
    def waste(self) -> float:
        """The larger unused share of the spec's vCPU or memory (0 when it fits exactly)."""
        if self.spec is None or self.use_specs:
            return 0.0
        cpu = 1 - self.needed.millicores / self.spec.millicores
        memory = 1 - self.needed.mib / self.spec.mib
        return max(cpu, memory)

    @property
    def wasteful(self) -> bool:
        return self.waste > WASTE_WARNING

    @property
    def what(self) -> str:
        """``2 vCPU / 4 GiB`` or how eci.use_specs / Arm decide it."""
        if self.use_specs:
            return "the first of eci.use_specs that ECI can create: " + ", ".join(self.use_specs)
        if self.spec is None:
            return f"nothing: {self.needed.label} is above ECI's largest spec"
        if self.arm64:
            return (
                f"an Arm ECS instance type of at least {self.spec.label} "
                "(Arm pods are billed by instance type)"
            )
        return self.spec.label

    def as_dict(self) -> dict[str, Any]:
        return {
            "services": self.services,
            "containers": {
                c.name: {"cpu_millicores": c.millicores, "memory_mib": c.mib}
                for c in self.containers
            },
            "sum": self.needed.label,
            "spec": self.spec.label if self.spec else None,
            "use_specs": list(self.use_specs),
            "arm64": self.arm64,
            "waste": round(self.waste, 3),
            "suggestions": list(self.suggestions),
        }


def _quantity_cpu(mc: int) -> str:
    return f"{mc // 1000}" if mc % 1000 == 0 else f"{mc}m"


def _quantity_memory(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def _resize(executor: ExecutorSettings, absorber: Container, cpu: int, mib: int) -> str:
    """``key = value`` settings that give ``absorber`` ``cpu``/``mib`` (requests kept valid)."""
    prefix = absorber.cpu_key.removeprefix("executor.").removesuffix("cpu_limit")
    parts = [f"{absorber.cpu_key} = {_quantity_cpu(cpu)!r}"]
    if millicores(getattr(executor, f"{prefix}cpu_request")) > cpu:
        parts.append(f"executor.{prefix}cpu_request = {_quantity_cpu(cpu)!r}")
    parts.append(f"{absorber.memory_key} = {_quantity_memory(mib)!r}")
    if mebibytes(getattr(executor, f"{prefix}memory_request")) > mib:
        parts.append(f"executor.{prefix}memory_request = {_quantity_memory(mib)!r}")
    return ", ".join(parts)


def _suggestions(
    executor: ExecutorSettings, containers: Sequence[Container], needed: Spec, spec: Spec
) -> tuple[str, ...]:
    """Settings that make the pod fill a spec: the one billed, or the next smaller one.

    The last container (the build container, or the last service) absorbs the difference.
    """
    absorber = containers[-1] if len(containers) > 2 else containers[0]
    rest = Spec(needed.millicores - absorber.millicores, needed.mib - absorber.mib)
    fill = _resize(executor, absorber, spec.millicores - rest.millicores, spec.mib - rest.mib)
    out = [f"to use all of the {spec.label} you pay for: {fill}"]
    # The largest spec below the billed one that still leaves the absorber 250m / 512Mi.
    smaller = [
        s
        for s in ECI_SPECS
        if s < spec
        and s.millicores >= rest.millicores + 250
        and s.mib >= rest.mib + 512
        and (s.millicores < spec.millicores or s.mib < spec.mib)
    ]
    fitting = [s for s in smaller if s.millicores <= needed.millicores and s.mib <= needed.mib]
    if fitting:
        lower = max(fitting, key=lambda s: (s.millicores, s.mib))
        fit = _resize(executor, absorber, lower.millicores - rest.millicores, lower.mib - rest.mib)
        out.append(f"or, to pay for {lower.label}: {fit}")
    return tuple(out)


def init_container(executor: ExecutorSettings) -> Container:
    """``init-permissions``: the helper image with the helper's resources (kubernetes.go)."""
    helper = job_pod_containers(executor)[1]
    return Container(
        "init-permissions", helper.cpu_key, helper.memory_key, helper.millicores, helper.mib
    )


def pod_needs(containers: Sequence[Container], init_containers: Sequence[Container] = ()) -> Spec:
    """What a pod needs: the sum of its containers, or its largest init container if more
    (init containers run one at a time, before the others)."""
    return Spec(
        max([sum(c.millicores for c in containers), *(c.millicores for c in init_containers)]),
        max([sum(c.mib for c in containers), *(c.mib for c in init_containers)]),
    )


def job_pod_billing(settings: Settings, services: int = 0) -> Billing:
    """What a job pod with ``services`` CI services bills as on ECI."""
    executor = settings.executor
    containers = job_pod_containers(executor, services)
    needed = pod_needs(containers, [init_container(executor)])
    spec = eci_spec(needed)
    arm64 = settings.runner.helper_arch == "arm64"
    use_specs = tuple(settings.eci.use_specs)
    suggestions: tuple[str, ...] = ()
    billing = Billing(services, tuple(containers), needed, spec, use_specs, arm64)
    if billing.wasteful and spec is not None:
        suggestions = _suggestions(executor, containers, needed, spec)
    return Billing(services, tuple(containers), needed, spec, use_specs, arm64, suggestions)


@dataclass(frozen=True)
class BillingSummary:
    """The lines ``render``, ``install --dry-run`` and ``status`` print about job pod cost."""

    profile: str
    pods: tuple[Billing, ...]

    def lines(self) -> list[str]:
        if self.profile != "eci":
            pod = self.pods[0]
            return [
                f"Job pods: containers' limits add up to {pod.needed.label} (profile "
                "kubernetes: your nodes are billed, not each pod)."
            ]
        plain, *with_services = self.pods
        text = f"Cost: each job pod bills as {plain.what}"
        for pod in with_services:
            many = "one service" if pod.services == 1 else f"{pod.services} services"
            text += f"; a job with {many} as {pod.what}"
        lines = [text + " (ECI, per second)."]
        for pod in self.pods:
            if not pod.wasteful or pod.spec is None:
                continue
            many = "no service" if pod.services == 0 else f"{pod.services} service(s)"
            lines.append(
                f"warning: a job pod with {many} needs {pod.needed.label} and is billed as "
                f"{pod.spec.label}: {round(pod.waste * 100)}% of it is paid for and unused"
            )
            lines.extend(f"  {suggestion}" for suggestion in pod.suggestions)
        return lines

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.lines() if line.startswith("warning:")]

    def as_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "job_pods": [p.as_dict() for p in self.pods]}


def billing_summary(settings: Settings, services: Sequence[int] = (0, 1)) -> BillingSummary:
    """Job pod cost for each number of services in ``services`` (default: none and one)."""
    return BillingSummary(settings.profile, tuple(job_pod_billing(settings, n) for n in services))


# eci.use_specs entries: "2-4Gi" (vCPU-memory) or an ECS instance type such as "ecs.c6.xlarge".
_USE_SPEC = re.compile(r"^(?P<cpu>\d+(?:\.\d+)?)-(?P<gib>\d+(?:\.\d+)?)Gi$")
_INSTANCE_TYPE = re.compile(r"^ecs\.[a-z0-9-]+(?:\.[a-z0-9-]+)+$")
MAX_USE_SPECS = 5  # "A maximum of five specifications can be specified" (ACK docs)


def parse_use_spec(entry: str) -> Spec | None:
    """The spec of a ``C-MGi`` entry of eci.use_specs; None for an ECS instance type.

    Raises:
        ValueError: neither form, or a vCPU/memory pair ECI does not offer.
    """
    match = _USE_SPEC.match(entry)
    if match is None:
        if _INSTANCE_TYPE.match(entry):
            return None
        raise ValueError(
            f"{entry!r} is neither a vCPU-memory spec such as '2-4Gi' nor an ECS instance "
            "type such as 'ecs.c6.xlarge'"
        )
    spec = Spec(round(float(match["cpu"]) * 1000), round(float(match["gib"]) * 1024))
    if spec not in ECI_SPECS:
        near = eci_spec(spec)
        hint = f": the next one ECI offers is {near.annotation!r}" if near else ""
        raise ValueError(f"{entry!r} is not a vCPU/memory spec ECI offers{hint}")
    return spec
