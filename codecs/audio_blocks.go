package codecs

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// The LPC body of the lossless audio codec (FORMAT.md, "Audio body"): a
// frame is cut into blocks of one length, each with its own stereo mode and
// predictors, and everything — parameters and residuals — goes into one
// range-coded stream whose models run on from block to block. A block's
// predictor reads the samples of the blocks before it in the frame, so only
// the frame's first samples pay for a warm-up: short frames keep one block,
// long ones (a second of music) change their predictor every few thousand
// samples as the sound changes, as FLAC's blocks do.

// Representations of a stereo pair, and which two each mode codes.
const (
	repLeft  = 0
	repRight = 1
	repMid   = 2
	repSide  = 3
)

var stereoReps = [4][2]int{
	stereoIndependent: {repLeft, repRight},
	stereoLeftSide:    {repLeft, repSide},
	stereoSideRight:   {repSide, repRight},
	stereoMidSide:     {repMid, repSide},
}

// Widths of the parameters in the stream (direct bits).
const (
	audioShiftBits     = 6
	audioOrderBits     = 6
	audioPrecisionBits = 4
	audioQShiftBits    = 5
	audioLevelBits     = 6
)

// blockPlan is how one block codes one channel slot.
type blockPlan struct {
	rep   int
	shift uint8
	lpc   lpcParams
	cost  int
}

// appendAudioInts appends an LPC body of channels × n integers of bitsPer
// bits, which fill writes channel by channel; floatExp ≥ 0 marks floats
// k / 2^e.
func appendAudioInts(dst []byte, channels, n, bitsPer, floatExp int, fast bool, fill func(c int, x []int64)) []byte {
	sc := audioPool.Get().(*audioScratch)
	defer audioPool.Put(sc)
	sc.an.fast = fast
	dst = append(dst, audioLPC)
	if floatExp >= 0 {
		dst = append(dst, byte(floatExp))
	}
	reps := channels
	if channels == 2 {
		reps = 4
	}
	sc.x = growRows(sc.x, reps, n)
	for c := range channels {
		fill(c, sc.x[c])
	}
	if channels == 2 {
		l, r, m, s := sc.x[0], sc.x[1], sc.x[2], sc.x[3]
		for i := range n {
			m[i] = (l[i] + r[i]) >> 1
			s[i] = l[i] - r[i]
		}
	}
	bs := chooseBlockSize(sc, channels, n)
	dst = binary.AppendUvarint(dst, uint64(bs))
	var enc rangeEncoder
	enc.init(dst)
	if len(sc.models) < channels {
		sc.models = make([]residualModel, channels)
	}
	plans := make([]blockPlan, channels)
	for start := 0; start < n; start += bs {
		end := min(start+bs, n)
		mode := planBlock(sc, channels, start, end, plans)
		if channels == 2 {
			enc.encodeDirect(uint32(mode), 2)
		}
		for slot := range channels {
			p := &plans[slot]
			writePlan(&enc, p)
			y, hist := blockWithHistory(sc, p.rep, p.shift, start, end)
			sc.r = resizeSlice(sc.r, end-start)
			lpcResiduals(y, hist, &p.lpc, sc.r)
			m := &sc.models[slot]
			if start == 0 {
				k0 := bestLevel(&sc.an.model, sc.r)
				enc.encodeDirect(uint32(k0), audioLevelBits)
				m.reset(k0)
			}
			for _, u := range sc.r {
				m.encode(&enc, u)
			}
		}
	}
	return padStream(enc.finish(), enc.start, n*channels)
}

// chooseBlockSize returns the block length that codes the frame in the
// fewest bits, among the frame itself (up to 8192 samples) and blocks of
// 4096 and 2048 samples (for frames long enough to gain from them).
func chooseBlockSize(sc *audioScratch, channels, n int) int {
	var cands []int
	if n <= 8192 {
		cands = append(cands, max(n, 1))
	}
	for _, b := range []int{4096, 2048} {
		if n > b*3/2 {
			cands = append(cands, b)
		}
	}
	if len(cands) == 1 {
		return cands[0]
	}
	plans := make([]blockPlan, channels)
	best, bestCost := cands[0], -1
	for _, bs := range cands {
		cost := 0
		for start := 0; start < n; start += bs {
			planBlock(sc, channels, start, min(start+bs, n), plans)
			for _, p := range plans {
				cost += p.cost
			}
		}
		if bestCost < 0 || cost < bestCost {
			best, bestCost = bs, cost
		}
	}
	return best
}

// planBlock chooses, for samples start … end−1, the stereo mode and each
// slot's shift and predictor; it returns the mode.
func planBlock(sc *audioScratch, channels, start, end int, plans []blockPlan) int {
	if channels != 2 {
		for c := range channels {
			plans[c] = planRep(sc, c, start, end)
		}
		return stereoIndependent
	}
	var rp [4]blockPlan
	for i := range rp {
		rp[i] = planRep(sc, i, start, end)
	}
	mode := stereoIndependent
	for m, pair := range stereoReps {
		if rp[pair[0]].cost+rp[pair[1]].cost < rp[stereoReps[mode][0]].cost+rp[stereoReps[mode][1]].cost {
			mode = m
		}
	}
	plans[0], plans[1] = rp[stereoReps[mode][0]], rp[stereoReps[mode][1]]
	return mode
}

func planRep(sc *audioScratch, rep, start, end int) blockPlan {
	p := blockPlan{rep: rep, shift: blockShift(sc.x[rep][start:end])}
	y, hist := blockWithHistory(sc, rep, p.shift, start, end)
	sc.r = resizeSlice(sc.r, end-start)
	var cost int
	p.lpc, cost = sc.an.chooseLPC(y, hist, sc.r)
	p.cost = cost + audioShiftBits + audioOrderBits
	return p
}

// blockShift is the number of low bits that are zero in every sample of x
// (0 when all are zero).
func blockShift(x []int64) uint8 {
	var or int64
	for _, v := range x {
		or |= v
	}
	if or == 0 {
		return 0
	}
	return uint8(bits.TrailingZeros64(uint64(or)))
}

// blockWithHistory returns samples start … end−1 of representation rep,
// shifted right by shift, behind up to maxLPCOrder samples before them (the
// predictor's history, shifted the same way), and how many those are.
func blockWithHistory(sc *audioScratch, rep int, shift uint8, start, end int) ([]int64, int) {
	hist := min(start, maxLPCOrder)
	src := sc.x[rep][start-hist : end]
	sc.y = resizeSlice(sc.y, len(src))
	for i, v := range src {
		sc.y[i] = v >> shift
	}
	return sc.y, hist
}

func writePlan(enc *rangeEncoder, p *blockPlan) {
	enc.encodeDirect(uint32(p.shift), audioShiftBits)
	enc.encodeDirect(uint32(p.lpc.order), audioOrderBits)
	if p.lpc.order == 0 {
		return
	}
	enc.encodeDirect(uint32(p.lpc.precision), audioPrecisionBits)
	enc.encodeDirect(uint32(p.lpc.shift), audioQShiftBits)
	for _, c := range p.lpc.coef[:p.lpc.order] {
		enc.encodeDirect(uint32(c)&(1<<p.lpc.precision-1), uint(p.lpc.precision))
	}
}

func readPlan(dec *rangeDecoder, p *blockPlan) error {
	p.shift = uint8(dec.decodeDirect(audioShiftBits))
	p.lpc.order = int(dec.decodeDirect(audioOrderBits))
	if p.shift > 32 || p.lpc.order > maxLPCOrder {
		return fmt.Errorf("%w: audio block shift %d, order %d", ErrCorrupt, p.shift, p.lpc.order)
	}
	if p.lpc.order == 0 {
		return nil
	}
	p.lpc.precision = uint8(dec.decodeDirect(audioPrecisionBits))
	p.lpc.shift = uint8(dec.decodeDirect(audioQShiftBits))
	if p.lpc.precision < 1 || p.lpc.precision > maxLPCPrecision {
		return fmt.Errorf("%w: audio predictor precision %d", ErrCorrupt, p.lpc.precision)
	}
	pr := uint(p.lpc.precision)
	for j := range p.lpc.order {
		v := dec.decodeDirect(pr)
		p.lpc.coef[j] = int32(v<<(32-pr)) >> (32 - pr) // sign-extend
	}
	return nil
}

// growRows resizes rows to k slices of n values, reusing their memory.
func growRows(rows [][]int64, k, n int) [][]int64 {
	if cap(rows) < k {
		rows = append(rows[:cap(rows)], make([][]int64, k-cap(rows))...)
	}
	rows = rows[:k]
	for i := range rows {
		rows[i] = resizeSlice(rows[i], n)
	}
	return rows
}

// padStream pads a range-coded stream that began at start to the minimum
// length for its samples (see samplesPerStreamByte); the zeros read as the
// decoder's own padding would.
func padStream(dst []byte, start, samples int) []byte {
	for len(dst)-start < (samples+samplesPerStreamByte-1)/samplesPerStreamByte {
		dst = append(dst, 0)
	}
	return dst
}

// initialLevel is the bit length of the mean of the first residuals: where
// the model's level starts.
func initialLevel(r []uint64) uint8 {
	var sum uint64
	m := min(len(r), 64)
	for _, u := range r[:m] {
		sum += min(u, 1<<40)
	}
	if m == 0 {
		return 0
	}
	return uint8(bits.Len64(sum / uint64(m)))
}

// bestLevel is the start level k0 that codes a slot's first residuals in
// the fewest bits: initialLevel's guess and its neighbours, costed with the
// residual model (m is scratch). The level follows the residuals within a
// few dozen samples, so the first 128 decide.
func bestLevel(m *residualModel, r []uint64) uint8 {
	guess := initialLevel(r)
	r = r[:min(len(r), 128)]
	best, bestCost := guess, uint64(0)
	for k := max(int(guess)-3, 0); k <= min(int(guess)+3, maxResidualBits); k++ {
		m.reset(uint8(k))
		var c uint64
		for _, u := range r {
			c += uint64(m.cost(u))
		}
		if k == max(int(guess)-3, 0) || c < bestCost {
			best, bestCost = uint8(k), c
		}
	}
	return best
}

// decodeAudioInts decodes an LPC body (after its kind and float grid bytes)
// into one slice of n integers per channel, owned by sc, checking each
// against what bitsPer-bit samples allow.
func decodeAudioInts(src []byte, channels, n, bitsPer int, sc *audioScratch) ([][]int64, error) {
	bs64, k := binary.Uvarint(src)
	if k <= 0 || bs64 < 1 || bs64 > uint64(max(n, 1)) {
		return nil, fmt.Errorf("%w: audio block length", ErrCorrupt)
	}
	bs, src := int(bs64), src[k:]
	// Checked before allocating: the stream holds at least one byte per
	// samplesPerStreamByte samples (see padStream).
	minLen := (n*channels + samplesPerStreamByte - 1) / samplesPerStreamByte
	if uint64(len(src))*samplesPerStreamByte < uint64(n)*uint64(channels) {
		return nil, fmt.Errorf("%w: an audio stream of %d bytes cannot hold %d samples × %d channels", ErrCorrupt, len(src), n, channels)
	}
	reps := channels
	if channels == 2 {
		reps = 4
	}
	sc.x = growRows(sc.x, reps, n)
	if len(sc.models) < channels {
		sc.models = make([]residualModel, channels)
	}
	var dec rangeDecoder
	dec.init(src)
	var p blockPlan
	for start := 0; start < n; start += bs {
		end := min(start+bs, n)
		mode := stereoIndependent
		if channels == 2 {
			mode = int(dec.decodeDirect(2))
		}
		for slot := range channels {
			if err := readPlan(&dec, &p); err != nil {
				return nil, err
			}
			m := &sc.models[slot]
			if start == 0 {
				k0 := uint8(dec.decodeDirect(audioLevelBits))
				if k0 > maxResidualBits {
					return nil, fmt.Errorf("%w: audio level %d", ErrCorrupt, k0)
				}
				m.reset(k0)
			}
			rep, cb := slot, bitsPer
			if channels == 2 {
				rep = stereoReps[mode][slot]
				if rep == repSide {
					cb++
				}
			}
			cb -= int(p.shift)
			if cb < 1 {
				return nil, fmt.Errorf("%w: audio block shift %d", ErrCorrupt, p.shift)
			}
			y, hist := blockWithHistory(sc, rep, p.shift, start, end)
			if err := lpcSynthesis(&dec, m, &p.lpc, y, hist, cb); err != nil {
				return nil, fmt.Errorf("channel %d: %w", slot, err)
			}
			out := sc.x[rep][start:end]
			for i, v := range y[hist:] {
				out[i] = v << p.shift
			}
		}
		if channels == 2 {
			completeStereo(mode, sc.x, start, end)
		}
	}
	if !dec.finished(minLen) {
		return nil, fmt.Errorf("%w: the audio stream does not end where its samples do", ErrCorrupt)
	}
	return sc.x[:channels], nil
}

// completeStereo derives, for samples start … end−1, the two
// representations a block did not code from the two it did.
func completeStereo(mode int, x [][]int64, start, end int) {
	l, r, m, s := x[repLeft][start:end], x[repRight][start:end], x[repMid][start:end], x[repSide][start:end]
	switch mode {
	case stereoLeftSide:
		for i := range l {
			r[i] = l[i] - s[i]
		}
	case stereoSideRight:
		for i := range r {
			l[i] = r[i] + s[i]
		}
	case stereoMidSide:
		for i := range m {
			mid := m[i]<<1 | s[i]&1
			l[i], r[i] = (mid+s[i])>>1, (mid-s[i])>>1
		}
	}
	for i := range l {
		m[i] = (l[i] + r[i]) >> 1
		s[i] = l[i] - r[i]
	}
}

// lpcSynthesis decodes the residuals of y[hist:] and runs the predictor,
// rejecting a value beyond cb bits (signed) so that the next prediction
// stays within int64.
func lpcSynthesis(dec *rangeDecoder, m *residualModel, p *lpcParams, y []int64, hist, cb int) error {
	lo, hi := -int64(1)<<(cb-1), int64(1)<<(cb-1)-1
	warm := min(max(p.order, hist), len(y))
	for i := hist; i < warm; i++ {
		u, ok := m.decode(dec)
		if !ok {
			return fmt.Errorf("%w: audio residual", ErrCorrupt)
		}
		v := fixedPrediction(y, i) + unzigzag(u)
		if v < lo || v > hi {
			return fmt.Errorf("%w: audio sample out of range", ErrCorrupt)
		}
		y[i] = v
	}
	var rc [maxLPCOrder]int64
	c := p.reversed(&rc)
	sh := p.shift
	for i := warm; i < len(y); i++ {
		u, ok := m.decode(dec)
		if !ok {
			return fmt.Errorf("%w: audio residual", ErrCorrupt)
		}
		v := dot(c, y[i-len(c):i])>>sh + unzigzag(u)
		if v < lo || v > hi {
			return fmt.Errorf("%w: audio sample out of range", ErrCorrupt)
		}
		y[i] = v
	}
	return nil
}
