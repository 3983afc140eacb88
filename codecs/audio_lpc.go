package codecs

import (
	"math"
	"math/bits"
)

// Linear prediction for the lossless audio codec (FORMAT.md, "Audio body").
// The encoder fits an LPC predictor of up to maxLPCOrder taps to each channel
// of a frame (autocorrelation of a Tukey-windowed copy, Levinson-Durbin),
// quantises its coefficients and keeps, among a few orders and precisions,
// the one whose residuals plus coefficients cost the fewest bits. The decoder
// only runs the integer predictor, so frames decode the same on every
// machine: all floating point stays in the encoder.

const (
	maxLPCOrder     = 32
	maxLPCPrecision = 15 // bits of a quantised coefficient, sign included
	maxLPCShift     = 31
)

// lpcParams is a channel's quantised predictor.
type lpcParams struct {
	order     int
	precision uint8 // 1 to maxLPCPrecision
	shift     uint8 // 0 to maxLPCShift
	coef      [maxLPCOrder]int32
}

// lpcResiduals writes the residuals of y[hist:] under p to r, zig-zagged:
// y[:hist] is history (the samples of the frame's earlier blocks), and
// samples with fewer than order before them in the frame use the fixed
// predictors of order 0, 1, 2. Arithmetic is 64-bit: samples of at most 35
// bits times coefficients of 15 bits over 32 taps cannot overflow.
func lpcResiduals(y []int64, hist int, p *lpcParams, r []uint64) {
	warm := min(max(p.order, hist), len(y))
	for i := hist; i < warm; i++ {
		r[i-hist] = zigzag(y[i] - fixedPrediction(y, i))
	}
	var rc [maxLPCOrder]int64
	c := p.reversed(&rc)
	sh := p.shift
	r = r[warm-hist:]
	for i := warm; i < len(y); i++ {
		r[i-warm] = zigzag(y[i] - dot(c, y[i-len(c):i])>>sh)
	}
}

// reversed writes p's coefficients to rc oldest tap first, so that the
// prediction of a sample is dot(c, the order samples before it).
func (p *lpcParams) reversed(rc *[maxLPCOrder]int64) []int64 {
	c := rc[:p.order]
	for j := range c {
		c[len(c)-1-j] = int64(p.coef[j])
	}
	return c
}

// dot is Σ c[j] × h[j]; h is as long as c. Four sums side by side let the
// multiplications overlap (the sum is the same: integer addition is
// associative).
func dot(c, h []int64) int64 {
	h = h[:len(c)]
	var s0, s1, s2, s3 int64
	j := 0
	for ; j+4 <= len(c); j += 4 {
		s0 += c[j] * h[j]
		s1 += c[j+1] * h[j+1]
		s2 += c[j+2] * h[j+2]
		s3 += c[j+3] * h[j+3]
	}
	for ; j < len(c); j++ {
		s0 += c[j] * h[j]
	}
	return s0 + s1 + s2 + s3
}

// fixedPrediction is the warm-up predictor of sample i: 0, the previous
// sample, or the line through the two before.
func fixedPrediction(x []int64, i int) int64 {
	switch i {
	case 0:
		return 0
	case 1:
		return x[0]
	}
	return 2*x[i-1] - x[i-2]
}

// lpcAnalysis holds the encoder's floating-point working memory.
type lpcAnalysis struct {
	fast  bool      // AudioFast: one window, the quick estimate's best
	w     []float64 // windowed samples
	win   []float64 // the window, cached by length and taper
	winT  int       // the taper win was made for
	ac    [maxLPCOrder + 1]float64
	lpc   [maxLPCOrder][maxLPCOrder]float64 // lpc[o-1]: the coefficients of order o
	err   [maxLPCOrder + 1]float64
	cand  lpcParams
	r     []uint64
	model residualModel // residualCost's
	fin   []finalist
}

// tukey fills a.win with a Tukey window of n points whose cosine tapers
// take n/div points at each end.
func (a *lpcAnalysis) tukey(n, div int) []float64 {
	if len(a.win) == n && a.winT == div {
		return a.win
	}
	a.win, a.winT = resizeSlice(a.win, n), div
	taper := n / div
	for i := range a.win {
		a.win[i] = 1
	}
	for i := 0; i < taper; i++ {
		v := 0.5 - 0.5*math.Cos(math.Pi*float64(i)/float64(taper))
		a.win[i], a.win[n-1-i] = v, v
	}
	return a.win
}

// analyse computes the LPC coefficients of every order up to maxOrder for x,
// and the prediction error of each; it returns the highest order it could
// compute (lower for short or constant blocks).
func (a *lpcAnalysis) analyse(x []int64, maxOrder, div int) int {
	n := len(x)
	maxOrder = min(maxOrder, n-1)
	if maxOrder < 1 {
		return 0
	}
	win := a.tukey(n, div)
	a.w = resizeSlice(a.w, n)
	for i, v := range x {
		a.w[i] = float64(v) * win[i]
	}
	for lag := 0; lag <= maxOrder; lag++ {
		var s float64
		w := a.w
		for i := lag; i < n; i++ {
			s += w[i] * w[i-lag]
		}
		a.ac[lag] = s
	}
	if a.ac[0] == 0 {
		return 0
	}
	a.ac[0] *= 1 + 1e-9 // a touch of white noise keeps Levinson stable on pure tones
	// Levinson-Durbin.
	var cur [maxLPCOrder]float64
	e := a.ac[0]
	a.err[0] = e
	for o := 1; o <= maxOrder; o++ {
		acc := a.ac[o]
		for j := 0; j < o-1; j++ {
			acc -= cur[j] * a.ac[o-1-j]
		}
		k := acc / e
		var next [maxLPCOrder]float64
		for j := 0; j < o-1; j++ {
			next[j] = cur[j] - k*cur[o-2-j]
		}
		next[o-1] = k
		cur = next
		e *= 1 - k*k
		if !(e > 0) {
			return o - 1
		}
		a.lpc[o-1] = cur
		a.err[o] = e
	}
	return maxOrder
}

// quantise makes p the order-o coefficients at precision bits, with error
// feedback so that the rounding errors do not add up (as FLAC does). It
// reports false when the coefficients cannot be represented.
func (a *lpcAnalysis) quantise(o int, precision uint8, p *lpcParams) bool {
	c := a.lpc[o-1][:o]
	cmax := 0.0
	for _, v := range c {
		cmax = max(cmax, math.Abs(v))
	}
	if !(cmax > 0) || math.IsInf(cmax, 0) {
		return false
	}
	_, exp := math.Frexp(cmax) // cmax < 2^exp
	shift := int(precision) - 1 - exp
	if shift > maxLPCShift {
		shift = maxLPCShift
	}
	if shift < 0 {
		return false
	}
	lim := int64(1)<<(precision-1) - 1
	p.order, p.precision, p.shift = o, precision, uint8(shift)
	var carry float64
	for j, v := range c {
		t := v*float64(int64(1)<<shift) + carry
		q := int64(math.Round(t))
		q = min(max(q, -lim-1), lim)
		carry = t - float64(q)
		p.coef[j] = int32(q)
	}
	return true
}

// residualCost is what the range coder will spend on r, in bits: the
// residual model run from the start of a frame over r, as encode would run
// it, counting each decision at the probability it would be coded with.
// Exact for a frame's first block (most frames have one) and close for the
// later ones, whose model has seen the blocks before.
func (a *lpcAnalysis) residualCost(r []uint64) int {
	m := &a.model
	m.reset(initialLevel(r))
	var total uint64
	for _, u := range r {
		total += uint64(m.cost(u))
	}
	return int((total + costUnit/2) / costUnit)
}

// quickCost is a cheap proxy for residualCost — each value's bit length and
// one bit for the decisions — close enough to rank many predictors before
// the few best are costed exactly.
func quickCost(r []uint64) int {
	total := 0
	for _, u := range r {
		total += bits.Len64(u)
	}
	return total + len(r)
}

// lpcFinalists is how many predictors, the best by quickCost, chooseLPC
// costs exactly.
const lpcFinalists = 3

// finalist is a predictor that chooseLPC will cost exactly.
type finalist struct {
	p     lpcParams
	quick int // quickCost of its residuals plus its coefficients
}

// chooseLPC returns the best predictor it finds for y[hist:] (y[:hist] is
// its history) and the bits of its residuals and coefficients as the range
// coder will spend them; r is left holding those residuals. Candidates —
// several orders and precisions under three windows, as FLAC -8 tries
// several apodizations — are ranked by quickCost; the few best and the
// fixed predictor are then run through the residual model itself.
func (a *lpcAnalysis) chooseLPC(y []int64, hist int, r []uint64) (lpcParams, int) {
	a.fin = a.fin[:0]
	// Tapers of a quarter of the block at each end (Tukey 0.5), of a
	// twentieth, and of half (a Hann window).
	windows := []int{4, 20, 2}
	if a.fast {
		windows = windows[:1]
	}
	for _, div := range windows {
		a.chooseWindowed(y, hist, div)
	}
	// AudioFast compares by the quick estimate only, not by coding each
	// finalist's residuals for real.
	costOf := a.residualCost
	if a.fast {
		costOf = quickCost
	}
	best := lpcParams{}
	lpcResiduals(y, hist, &best, r)
	bestCost := costOf(r)
	a.r = resizeSlice(a.r, len(y)-hist)
	for i := range a.fin {
		f := &a.fin[i]
		lpcResiduals(y, hist, &f.p, a.r)
		cost := costOf(a.r) + f.p.order*int(f.p.precision) + audioPrecisionBits + audioQShiftBits
		if cost < bestCost {
			best, bestCost = f.p, cost
			copy(r, a.r)
		}
	}
	return best, bestCost
}

// consider keeps p among the finalists if its quick cost is among the
// lpcFinalists best.
func (a *lpcAnalysis) consider(p *lpcParams, quick int) {
	finalists := lpcFinalists
	if a.fast {
		finalists = 1
	}
	if len(a.fin) < finalists {
		a.fin = append(a.fin, finalist{*p, quick})
		return
	}
	worst := 0
	for i := range a.fin {
		if a.fin[i].quick > a.fin[worst].quick {
			worst = i
		}
	}
	if quick < a.fin[worst].quick {
		a.fin[worst] = finalist{*p, quick}
	}
}

// chooseWindowed is chooseLPC's search under one window: it offers its
// candidates to consider.
func (a *lpcAnalysis) chooseWindowed(y []int64, hist int, div int) {
	x := y[hist:]
	n := len(x)
	maxOrder := a.analyse(x, min(maxLPCOrder, n/8), div)
	if maxOrder == 0 {
		return
	}
	// Rank the orders by the error Levinson predicts plus the coefficients'
	// bits, then code a few of the best for real.
	prec := basePrecision(n)
	type cand struct {
		order int
		est   float64
	}
	var ranked [maxLPCOrder]cand
	for o := 1; o <= maxOrder; o++ {
		est := 0.5*float64(n)*math.Log2(max(a.err[o], 1e-30)/float64(n)) + float64(o)*float64(prec)
		ranked[o-1] = cand{o, est}
	}
	// A partial selection sort: the few best estimates first.
	tries := 6
	if a.fast {
		tries = 2
	}
	nr := min(tries, maxOrder)
	for i := 0; i < nr; i++ {
		m := i
		for j := i + 1; j < maxOrder; j++ {
			if ranked[j].est < ranked[m].est {
				m = j
			}
		}
		ranked[i], ranked[m] = ranked[m], ranked[i]
	}
	a.r = resizeSlice(a.r, n)
	bestOrder, bestQuick := 0, -1
	try := func(o int, precision uint8) {
		if !a.quantise(o, precision, &a.cand) {
			return
		}
		lpcResiduals(y, hist, &a.cand, a.r)
		quick := quickCost(a.r) + o*int(precision)
		a.consider(&a.cand, quick)
		if bestQuick < 0 || quick < bestQuick {
			bestOrder, bestQuick = o, quick
		}
	}
	for i := 0; i < nr; i++ {
		try(ranked[i].order, prec)
	}
	if bestOrder > 0 && !a.fast {
		for _, p := range []uint8{prec - 3, prec - 2, prec - 1, prec + 1, prec + 2} {
			if p >= 5 && p <= maxLPCPrecision {
				try(bestOrder, p)
			}
		}
	}
}

// basePrecision is the coefficient precision tried first: fewer bits for
// short blocks, whose residuals cannot repay fine coefficients.
func basePrecision(n int) uint8 {
	switch {
	case n <= 192:
		return 8
	case n <= 384:
		return 9
	case n <= 768:
		return 10
	case n <= 1536:
		return 11
	case n <= 3072:
		return 12
	case n <= 6144:
		return 13
	}
	return 14
}
