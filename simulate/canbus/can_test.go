package canbus

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

const origin = int64(1_790_000_000_123_456_789)

// Two drive cycles: every message at its rate, frames in time order and
// apart on the wire, rolling counters and checksums right, every signal in a
// physically plausible range, and the cycle's phases all present.
func TestBus(t *testing.T) {
	b := New(origin, 1)
	span := int64(2 * CycleSeconds * float64(time.Second))
	frames := b.Until(nil, origin+span)
	count := map[uint32]int{}
	last := map[uint32]Frame{}
	var maxKmh, maxRPM, minBrakeAccel, maxCoolant float64
	gears := map[int]bool{}
	braked, idled := false, false
	for i, f := range frames {
		if f.Time < origin || f.Time >= origin+span {
			t.Fatalf("frame %d at %d, outside the span", i, f.Time)
		}
		if i > 0 && f.Time-frames[i-1].Time < int64(300*time.Microsecond) {
			t.Fatalf("frames %d and %d are %d ns apart: they would overlap on the wire", i-1, i, f.Time-frames[i-1].Time)
		}
		var m Message
		for _, mm := range Messages {
			if mm.ID == f.ID {
				m = mm
			}
		}
		if m.ID == 0 || f.DLC != m.DLC {
			t.Fatalf("frame %d: id %#x dlc %d", i, f.ID, f.DLC)
		}
		for _, v := range f.Data[f.DLC:] {
			if v != 0 {
				t.Fatalf("frame %d: data past the dlc: % x", i, f.Data)
			}
		}
		if err := Check(f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		sig := Signals(f)
		if p, ok := last[f.ID]; ok {
			period := int64(time.Second) / int64(m.Rate)
			if d := f.Time - p.Time; d < period-int64(60*time.Microsecond) || d > period+int64(60*time.Microsecond) {
				t.Fatalf("%#x: frames %d ns apart, want %d ± 60 µs", f.ID, d, period)
			}
			if want := math.Mod(Signals(p)["counter"]+1, 16); sig["counter"] != want {
				t.Fatalf("%#x: counter %v after %v", f.ID, sig["counter"], Signals(p)["counter"])
			}
		}
		last[f.ID] = f
		count[f.ID]++
		in := func(name string, lo, hi float64) {
			t.Helper()
			if v := sig[name]; v < lo || v > hi {
				t.Fatalf("frame %d (%#x): %s = %v, want %v to %v", i, f.ID, name, v, lo, hi)
			}
		}
		switch f.ID {
		case IDEngine:
			in("rpm", 700, 3500)
			in("throttle_pct", 0, 100)
			in("load_pct", 0, 100)
			maxRPM = max(maxRPM, sig["rpm"])
		case IDSpeed:
			in("speed_kmh", 0, 110)
			in("accel_mps2", -5, 5)
			maxKmh = max(maxKmh, sig["speed_kmh"])
			minBrakeAccel = min(minBrakeAccel, sig["accel_mps2"])
			idled = idled || sig["speed_kmh"] == 0
		case IDTemps:
			in("coolant_c", 15, 100)
			in("oil_c", 15, 100)
			in("intake_c", 15, 40)
			maxCoolant = max(maxCoolant, sig["coolant_c"])
		case IDGearBrk:
			in("gear", 0, 6)
			in("brake_bar", 0, 40)
			gears[int(sig["gear"])] = true
			if sig["brake"] == 1 && sig["brake_bar"] > 20 {
				braked = true
			}
			if sig["brake"] == 0 && sig["brake_bar"] != 0 {
				t.Fatalf("frame %d: brake pressure %v with the pedal released", i, sig["brake_bar"])
			}
		}
	}
	seconds := 2 * CycleSeconds
	for _, m := range Messages {
		if want := int(float64(m.Rate) * seconds); count[m.ID] != want {
			t.Errorf("%#x: %d frames in %v s, want %d", m.ID, count[m.ID], seconds, want)
		}
	}
	if maxKmh < 98 || maxRPM < 2000 || minBrakeAccel > -3 || !braked || !idled || len(gears) != 7 {
		t.Errorf("drive cycle: top speed %.1f km/h, rpm %.0f, hardest braking %.2f m/s², braked %v, idled %v, gears %v",
			maxKmh, maxRPM, minBrakeAccel, braked, idled, gears)
	}
	if maxCoolant < 30 {
		t.Errorf("the coolant stayed at %v °C over %v s", maxCoolant, seconds)
	}
}

// Until continues where it stopped: calling it in steps gives the same
// frames as one call.
func TestUntilSteps(t *testing.T) {
	one := New(origin, 7).Until(nil, origin+int64(3*time.Second))
	b := New(origin, 7)
	var steps []Frame
	for k := int64(1); k <= 300; k++ {
		steps = b.Until(steps, origin+k*int64(10*time.Millisecond))
	}
	if len(one) != len(steps) || len(one) != 3*(100+50+10+20) {
		t.Fatalf("%d frames in one call, %d in steps, want %d", len(one), len(steps), 3*(100+50+10+20))
	}
	for i := range one {
		if one[i] != steps[i] {
			t.Fatalf("frame %d: %+v in one call, %+v in steps", i, one[i], steps[i])
		}
	}
}

// The payload is the time, then a struct can_frame, byte for byte.
func TestPayloadLayout(t *testing.T) {
	f := Frame{Time: origin, ID: IDSpeed, DLC: 8, Data: [8]byte{0x10, 0x27, 0xfe, 0xff, 0, 0, 5, 0x99}}
	p := f.AppendPayload(nil)
	want := []byte{
		0x15, 0xcd, 0x4e, 0x2b, 0x84, 0x5b, 0xd7, 0x18, // origin, little-endian
		0xd0, 0x00, 0x00, 0x00, // can_id 0x0D0
		8, 0, 0, 0, // dlc, padding
		0x10, 0x27, 0xfe, 0xff, 0, 0, 5, 0x99,
	}
	if binary.LittleEndian.Uint64(want) != uint64(origin) {
		t.Fatalf("the test's time bytes are wrong: %d", binary.LittleEndian.Uint64(want))
	}
	if len(p) != PayloadSize || string(p) != string(want) {
		t.Fatalf("payload\n% x\nwant\n% x", p, want)
	}
	g, err := DecodePayload(p)
	if err != nil || g != f {
		t.Fatalf("decoded %+v (%v), want %+v", g, err, f)
	}
	sig := Signals(g)
	if sig["speed_kmh"] != 100 || sig["accel_mps2"] != -0.02 || sig["counter"] != 5 {
		t.Fatalf("signals %v", sig)
	}
	if _, err := DecodePayload(p[:23]); err == nil {
		t.Fatal("a short payload decoded")
	}
}
