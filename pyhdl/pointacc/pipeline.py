"""Pipeline helpers of the mapping-unit blocks: stall control without a ready chain, and rank
comparisons split into chunks so a compare-exchange takes two short register stages.

On an ECP5 a 77-bit comparison is one carry chain of 38 ``CCU2C`` cells: between two registers
alone it places at 221 MHz at speed grade 8 (4.5 ns; 172 MHz, 5.8 ns at grade 6), so a whole
compare-exchange (comparison, then a 77-bit multiplexer driven by it) does not fit 5 ns.
:func:`chunk_flags` compares ``CHUNK``-bit slices in parallel (``gt`` and ``eq`` each, to be
registered); :func:`greater` combines registered flags in two LUT levels, in front of the
multiplexer of the next stage.
"""

from amaranth.hdl import Const, Mux, Signal

from pyhdl.replicas import replicas

CHUNK = 20


def chunk_flags(x, y, chunk: int = CHUNK) -> list:
    """``[(x[c] > y[c], x[c] == y[c]) for each chunk c, lowest first]``, unsigned."""
    return [(x[lo:lo + chunk] > y[lo:lo + chunk], x[lo:lo + chunk] == y[lo:lo + chunk])
            for lo in range(0, len(x), chunk)]


def greater(flags):
    """``x > y`` from the chunk flags of :func:`chunk_flags` (registered or not)."""
    gt = flags[0][0]
    for g, e in flags[1:]:
        gt = g | (e & gt)
    return gt


def stage_control(m, n: int, in_valid, out_ready, name: str, gate=None, out_ready_next=None, load0_next=None,
                  copies: int = 0):
    """Valid bits and load enables of ``n`` register stages between a producer (``in_valid``)
    and a consumer (``out_ready``); returns ``(valid, load)``, ``load[0]`` being the ready of the
    producer. ``gate``: ``{s: condition}``, items for which the condition (on stage ``s - 1``'s
    registers) is low vanish on their way into stage ``s``. ``out_ready_next``: when
    ``out_ready`` is a register, its next value (the register's input); ``load[0]`` is then a
    register too, computed a cycle ahead from the stages' next valid bits, so a producer whose
    ``in_valid`` depends on ``load[0]`` starts its decision at a flip-flop; ``load0_next`` (a
    signal, optional) is then driven with that register's next value.

    ``load[s] = ~valid[s] | ~valid[n-1] | out_ready``: one LUT from registers and ``out_ready``
    for every stage (no ready chain through the stages). A stage loads the stage before it when
    the whole pipeline moves or when it is empty; in the second case the stage before is marked
    empty unless it loads too, so a bubble moves one stage forward per stalled cycle. Throughput
    one item per cycle whenever ``out_ready`` is high; latency ``n`` cycles. The caller loads its
    stage-``s`` data registers under ``load[s]``.

    ``copies`` (with ``out_ready_next``; a count, or a list of counts, one a stage): returns
    ``(valid, load, enables)`` instead, where
    ``enables[s]`` are ``copies`` flip-flops equal to ``load[s]`` every cycle (computed a cycle
    ahead like ``load[0]``), each to enable a share of stage ``s``'s data registers: a wide
    stage's enable is then many short nets from flip-flops instead of one net of a thousand
    sinks. They carry ``keep``, which ``runtime.bench.synth`` turns into "do not merge" (yosys
    would otherwise merge flip-flops with the same input).
    """
    if copies and out_ready_next is None:
        raise ValueError("copies of the load enables need out_ready_next")
    valid = [Signal(name=f"{name}{s}_valid") for s in range(n)]
    load = [Signal(name=f"{name}{s}_load") for s in range(n)]
    moves = ~valid[n - 1] | out_ready
    nxt = []
    for s in range(n):
        m.d.comb += load[s].eq(~valid[s] | moves)
        src = in_valid if s == 0 else valid[s - 1]
        if gate and s in gate:
            src = src & gate[s]
        with m.If(load[s]):
            m.d.sync += valid[s].eq(src)
        if s + 1 < n:
            with m.Elif(load[s + 1]):
                m.d.sync += valid[s].eq(0)
        if out_ready_next is not None and (copies or s in (0, n - 1)):
            later = Mux(load[s + 1], 0, valid[s]) if s + 1 < n else valid[s]
            nxt.append(Mux(load[s], src, later))
    def next_load(k):       # load[s]'s next value, from the k-th of the computed next valid bits
        return ~nxt[k] | ~nxt[-1] | out_ready_next

    if out_ready_next is not None:
        load0 = Signal(name=f"{name}0_load_r", init=1)
        m.d.sync += load0.eq(next_load(0))
        if load0_next is not None:
            m.d.comb += load0_next.eq(next_load(0))
        load[0] = load0
    if copies:
        enables = []
        for s in range(n):
            d = Signal(name=f"{name}{s}_load_next")
            m.d.comb += d.eq(next_load(s))
            enables.append(replicas(m, d, copies[s] if isinstance(copies, list) else copies, f"{name}{s}_load", init=1))
        return valid, load, enables
    return valid, load


def share(enables, i: int):
    """The enable of lane ``i`` from a list of :func:`replicas` (lanes dealt round the copies), or
    ``enables`` itself when it is one signal."""
    return enables[i % len(enables)] if isinstance(enables, list) else enables


def skid_output(m, out, beat, push, name: str):
    """Drive the stream ``out`` from ``beat`` (a value of its payload's shape), offered when
    ``push``; returns ``(room, room_next)``: ``room`` (a register, its next value ``room_next``)
    is high while the skid register is empty, the ready of the stages in front
    (:func:`stage_control`'s ``out_ready`` and ``out_ready_next``), and ``push`` must imply it.

    A pushed beat goes into ``out``'s payload register, or, when that one is held, into the skid
    register, so ``out.ready`` reaches these two registers and ``room`` only: no ready chain.
    Latency one cycle (the payload register), one beat a cycle.
    """
    room, room_next = Signal(init=1, name=f"{name}_room"), Signal(name=f"{name}_room_next")
    skid = Signal.like(out.payload, name=f"{name}_skid")
    out_valid = Signal(name=f"{name}_valid")
    m.d.comb += [room_next.eq(Mux(room, ~(push & out_valid & ~out.ready), out.ready)), out.valid.eq(out_valid)]
    m.d.sync += room.eq(room_next)
    with m.If(push):
        m.d.sync += skid.eq(beat)
    with m.If(~room):
        with m.If(out.ready):
            m.d.sync += out.payload.eq(skid)
    with m.Elif(push & (~out_valid | out.ready)):
        m.d.sync += [out.payload.eq(beat), out_valid.eq(1)]
    with m.Elif(out.ready):
        m.d.sync += out_valid.eq(0)
    return room, room_next


def one_hot_counts(m, bits, name: str = "below"):
    """``counts[i][c]``: exactly ``c`` of ``bits[0 .. i-1]`` are set, one-hot over ``c``, as plain
    logic (an adder tree would be mapped onto carry chains, slower than a few LUT levels here);
    each a signal, so later rows share the earlier ones (nested expressions would double a row)."""
    counts = [[Const(1, 1)]]
    for i in range(len(bits)):
        prev = counts[-1] + [Const(0, 1)]
        row = [Signal(name=f"{name}{i + 1}_{c}") for c in range(i + 2)]
        m.d.comb += [r.eq(Mux(bits[i], prev[c - 1] if c else 0, prev[c])) for c, r in enumerate(row)]
        counts.append(row)
    return [row + [Const(0, 1)] * (len(bits) + 1 - len(row)) for row in counts]
