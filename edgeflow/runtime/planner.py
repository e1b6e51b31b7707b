"""Tensor lifetimes and the greedy arena planner (TFLite Micro ``GreedyMemoryPlanner`` rule).

Every integer activation tensor gets a buffer that lives from the step that writes it to the
last step that reads it (graph inputs from step 0, graph outputs to the end). Buffers are placed
largest first; each goes to the lowest offset that does not overlap any already-placed buffer
whose lifetime intersects its own (first fit). Offsets and sizes are aligned to 16 bytes.
Views (reshape, flatten, squeeze: ``Node.is_view``) share their input's buffer. The arena size —
the peak RAM for activations — is the highest end offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeflow.runtime.ir import Node

ALIGN = 16


def align_up(n: int, a: int = ALIGN) -> int:
    return (int(n) + a - 1) // a * a


@dataclass
class Buffer:
    name: str
    size: int  # bytes, unaligned
    first: int  # step that writes it (-1: graph input)
    last: int  # last step that reads it
    offset: int = -1
    tensors: list[str] = field(default_factory=list)

    def overlaps(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class MemoryPlan:
    buffers: list[Buffer]
    arena_bytes: int
    steps: int

    def usage(self) -> list[tuple[int, int]]:
        """Per step: (bytes of live buffers, highest end offset of live buffers)."""
        out = []
        for s in range(self.steps):
            live = [b for b in self.buffers if b.first <= s <= b.last]
            out.append((sum(align_up(b.size) for b in live), max((b.offset + align_up(b.size) for b in live), default=0)))
        return out

    @property
    def sum_of_buffers(self) -> int:
        return sum(align_up(b.size) for b in self.buffers)


def greedy_plan(buffers: list[Buffer], align: int = ALIGN) -> MemoryPlan:
    """Place ``buffers`` (largest first, first fit); returns the plan with offsets filled in."""
    order = sorted(buffers, key=lambda b: (-align_up(b.size, align), b.first, b.name))
    placed: list[Buffer] = []
    for b in order:
        size = align_up(b.size, align)
        conflicts = sorted((p for p in placed if p.overlaps(b)), key=lambda p: p.offset)
        offset = 0
        for p in conflicts:
            if offset + size <= p.offset:
                break
            offset = max(offset, p.offset + align_up(p.size, align))
        b.offset = offset
        placed.append(b)
    arena = max((b.offset + align_up(b.size, align) for b in buffers), default=0)
    steps = max((b.last for b in buffers), default=-1) + 1
    return MemoryPlan(buffers, arena, max(steps, 1))


def lifetimes(nodes: list[Node], sizes: dict[str, int], inputs: list[str], outputs: list[str]) -> list[Buffer]:
    """Buffers of the integer tensors in ``sizes`` over the IR schedule ``nodes``.

    ``sizes`` maps tensor name -> bytes (only tensors kept in the arena). Views merge their
    output into the input's buffer.
    """
    root: dict[str, str] = {}

    def find(n: str) -> str:
        while n in root:
            n = root[n]
        return n

    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for name in inputs:
        if name in sizes:
            first[name] = 0
            last[name] = 0
    for step, op in enumerate(nodes):
        for i in op.inputs:
            if i in sizes:
                r = find(i)
                last[r] = max(last.get(r, step), step)
        for o in op.outputs:
            if o not in sizes:
                continue
            if op.is_view and op.inputs and op.inputs[0] in sizes:
                root[o] = find(op.inputs[0])
                continue
            first.setdefault(o, step)
            last[o] = max(last.get(o, step), step)
    end = len(nodes) - 1
    for o in outputs:
        if o in sizes:
            last[find(o)] = max(end, 0)
    bufs: dict[str, Buffer] = {}
    for name in sizes:
        r = find(name)
        if r not in first:
            continue
        if r not in bufs:
            bufs[r] = Buffer(r, sizes[r], first[r], last.get(r, first[r]))
        bufs[r].tensors.append(name)
    return list(bufs.values())
