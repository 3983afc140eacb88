// Package canbus makes the traffic of a vehicle's powertrain CAN bus as a
// SocketCAN capture (candump) would record it: four standard-ID messages sent
// periodically by their ECUs, each a little late by a few microseconds of
// arbitration and scheduling jitter, their signals following a repeating
// drive cycle (idle, accelerate through the gears, cruise, brake to a stop)
// while the coolant warms up. It is deterministic for an origin and a seed.
//
// # Messages
//
// Signals are little-endian (Intel byte order), unsigned unless marked; a
// physical value is raw × scale + offset. Byte 7 of the 8-byte messages is a
// checksum: the low byte of the sum of bytes 0 to 6 and the ID's low byte.
//
//	ID     rate    DLC  bytes  signal
//	0x0C0  100 Hz  8    0–1    engine speed, 0.25 rpm
//	                    2      throttle position, 0.4 %
//	                    3      engine load, 0.4 %
//	                    6      rolling counter, 0–15
//	                    7      checksum
//	0x0D0   50 Hz  8    0–1    vehicle speed, 0.01 km/h
//	                    2–3    longitudinal acceleration, signed, 0.01 m/s²
//	                    6      rolling counter, 0–15
//	                    7      checksum
//	0x1A0   10 Hz  4    0      coolant temperature, 1 °C, offset −40
//	                    1      oil temperature, 1 °C, offset −40
//	                    2      intake air temperature, 1 °C, offset −40
//	                    3      rolling counter, 0–15
//	0x3E8   20 Hz  4    0      gear: 0 neutral, 1 to 6
//	                    1      bit 0: brake pedal pressed
//	                    2      brake pressure, 0.5 bar
//	                    3      rolling counter, 0–15
//
// Bytes past the DLC are zero.
//
// # Payload
//
// Each frame travels as one opaque frame of media type MediaType, of
// PayloadSize bytes:
//
//	offset  width  field
//	0       8      receive time, ns since the Unix epoch, int64 little-endian
//	8       4      can_id, uint32 little-endian (SocketCAN: bit 31 extended
//	               frame, 30 remote request, 29 error; here 11-bit IDs, no flags)
//	12      1      dlc (can_dlc, the data length, 0 to 8)
//	13      3      padding (__pad, __res0, len8_dlc), zero
//	16      8      data
//
// Bytes 8 to 23 are Linux's struct can_frame as read from a raw CAN socket,
// so they go back to a socket or into a candump decoder unchanged. The time
// comes first because CAN frames arrive microseconds apart while opaque
// frames are timed to the millisecond: a query's time column is cut to the
// millisecond and the payload carries the exact time.
//
// It is a simulated sensor for demos, tests and benchmarks (see package
// simulate): no hardware is read.
package canbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// MediaType is the media type of the opaque frames.
const MediaType = "application/vnd.sensorium.socketcan"

// PayloadSize is the size of a payload: the time and a struct can_frame.
const PayloadSize = 24

// The message IDs.
const (
	IDEngine  = 0x0C0 // engine speed, throttle, load
	IDSpeed   = 0x0D0 // vehicle speed, acceleration
	IDTemps   = 0x1A0 // coolant, oil, intake air temperatures
	IDGearBrk = 0x3E8 // gear, brake pedal, brake pressure
)

// Message is one periodic message on the bus.
type Message struct {
	ID     uint32
	Rate   int           // Hz
	Phase  time.Duration // offset of its schedule from the origin
	DLC    uint8
	Sender string
}

// Messages are the bus's messages; their phases keep their frames apart on
// the wire (an 8-byte frame at 500 kbit/s takes about 250 µs).
var Messages = []Message{
	{ID: IDEngine, Rate: 100, Phase: 210 * time.Microsecond, DLC: 8, Sender: "engine ECU"},
	{ID: IDSpeed, Rate: 50, Phase: 2630 * time.Microsecond, DLC: 8, Sender: "ABS ECU"},
	{ID: IDTemps, Rate: 10, Phase: 5120 * time.Microsecond, DLC: 4, Sender: "engine ECU"},
	{ID: IDGearBrk, Rate: 20, Phase: 7480 * time.Microsecond, DLC: 4, Sender: "transmission ECU"},
}

// Frame is one CAN frame with its receive time.
type Frame struct {
	Time int64 // ns since the Unix epoch
	ID   uint32
	DLC  uint8
	Data [8]byte
}

// AppendPayload appends the frame's payload (see the package doc).
func (f Frame) AppendPayload(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(f.Time))
	dst = binary.LittleEndian.AppendUint32(dst, f.ID)
	dst = append(dst, f.DLC, 0, 0, 0)
	return append(dst, f.Data[:]...)
}

// DecodePayload reads a payload back.
func DecodePayload(b []byte) (Frame, error) {
	if len(b) != PayloadSize {
		return Frame{}, fmt.Errorf("simulate: a payload of %d bytes, want %d", len(b), PayloadSize)
	}
	f := Frame{Time: int64(binary.LittleEndian.Uint64(b)), ID: binary.LittleEndian.Uint32(b[8:]), DLC: b[12]}
	if f.DLC > 8 {
		return Frame{}, fmt.Errorf("simulate: dlc %d", f.DLC)
	}
	copy(f.Data[:], b[16:])
	return f, nil
}

// Signals decodes a frame's signals to physical values, by the table in the
// package doc; nil for an unknown ID. The counter is "counter".
func Signals(f Frame) map[string]float64 {
	d := f.Data
	u16 := func(i int) float64 { return float64(binary.LittleEndian.Uint16(d[i:])) }
	switch f.ID {
	case IDEngine:
		return map[string]float64{"rpm": u16(0) * 0.25, "throttle_pct": float64(d[2]) * 0.4, "load_pct": float64(d[3]) * 0.4, "counter": float64(d[6])}
	case IDSpeed:
		return map[string]float64{"speed_kmh": u16(0) * 0.01, "accel_mps2": float64(int16(binary.LittleEndian.Uint16(d[2:]))) * 0.01, "counter": float64(d[6])}
	case IDTemps:
		return map[string]float64{"coolant_c": float64(d[0]) - 40, "oil_c": float64(d[1]) - 40, "intake_c": float64(d[2]) - 40, "counter": float64(d[3])}
	case IDGearBrk:
		return map[string]float64{"gear": float64(d[0]), "brake": float64(d[1] & 1), "brake_bar": float64(d[2]) * 0.5, "counter": float64(d[3])}
	}
	return nil
}

// ErrChecksum is returned by Check for a frame whose checksum is wrong.
var ErrChecksum = errors.New("simulate: checksum mismatch")

// Check verifies an 8-byte message's checksum.
func Check(f Frame) error {
	if f.DLC != 8 {
		return nil
	}
	if checksum(f.ID, f.Data[:7]) != f.Data[7] {
		return ErrChecksum
	}
	return nil
}

func checksum(id uint32, b []byte) byte {
	s := byte(id)
	for _, v := range b {
		s += v
	}
	return s
}

// The drive cycle, in seconds from its start.
const (
	idleEnd   = 8.0
	accelEnd  = idleEnd + 14  // 0 to 100 km/h
	cruiseEnd = accelEnd + 20 // 100 km/h
	brakeEnd  = cruiseEnd + 9 // to a stop
	// CycleSeconds is the length of one drive cycle.
	CycleSeconds = brakeEnd
	cruiseKmh    = 100.0
)

// The drivetrain.
var gearRatios = [...]float64{0, 3.6, 2.1, 1.4, 1.0, 0.8, 0.65}

const (
	finalDrive  = 3.9
	wheelRadius = 0.31 // m
	idleRPM     = 800.0
	ambientC    = 22.0
)

// State is the vehicle at an instant.
type State struct {
	SpeedKmh, AccelMPS2  float64
	RPM, Throttle, Load  float64 // rpm, %, %
	Gear                 int
	Brake                bool
	BrakeBar             float64
	CoolantC, OilC, AirC float64
}

// Bus is a simulated bus. Use New.
type Bus struct {
	origin  int64
	rng     *rand.Rand
	next    []int64 // each message's next send time, jitter included
	n       []int64 // each message's frames sent
	counter []byte
	coolant float64 // °C
	oil     float64
	thermT  float64 // s, time the temperatures are at
}

// New returns a bus whose schedule starts at origin (ns since the Unix
// epoch), with the engine cold.
func New(origin int64, seed uint64) *Bus {
	b := &Bus{origin: origin, rng: rand.New(rand.NewPCG(seed, 0xCA4)), coolant: ambientC, oil: ambientC}
	b.next = make([]int64, len(Messages))
	b.n = make([]int64, len(Messages))
	b.counter = make([]byte, len(Messages))
	for i := range Messages {
		b.next[i] = b.sendTime(i, 0)
	}
	return b
}

// sendTime is message i's k-th send time: its schedule plus up to 60 µs of
// jitter (it never overtakes the next period).
func (b *Bus) sendTime(i int, k int64) int64 {
	m := Messages[i]
	period := int64(time.Second) / int64(m.Rate)
	return b.origin + int64(m.Phase) + k*period + b.rng.Int64N(int64(60*time.Microsecond))
}

// Until appends to dst every frame sent before t (ns), in time order, and
// returns it.
func (b *Bus) Until(dst []Frame, t int64) []Frame {
	for {
		i := 0
		for j := range b.next {
			if b.next[j] < b.next[i] {
				i = j
			}
		}
		if b.next[i] >= t {
			return dst
		}
		dst = append(dst, b.frame(i, b.next[i]))
		b.n[i]++
		b.next[i] = b.sendTime(i, b.n[i])
	}
}

// StateAt returns the vehicle's state at ns since the origin. It advances
// the temperatures, so call it with non-decreasing times (Until does).
func (b *Bus) StateAt(sinceOrigin int64) State {
	ts := float64(sinceOrigin) / 1e9
	ct := math.Mod(ts, CycleSeconds)
	var s State
	const accelTime = accelEnd - idleEnd
	const brakeTime = brakeEnd - cruiseEnd
	vmax := cruiseKmh / 3.6
	switch {
	case ct < idleEnd:
		// Stopped, the foot on the brake until a second before pulling away.
		if ct < idleEnd-1 {
			s.Brake, s.BrakeBar = true, 8
		}
	case ct < accelEnd:
		// v = vmax·(1 − (1 − x)²): about 4 m/s² at the launch, easing
		// into the cruise.
		x := (ct - idleEnd) / accelTime
		s.SpeedKmh = cruiseKmh * (1 - (1-x)*(1-x))
		s.AccelMPS2 = vmax * 2 * (1 - x) / accelTime
		s.Throttle = 25 + 50*(1-x)
	case ct < cruiseEnd:
		// Cruise with a gentle undulation, as a driver holds a speed.
		w := 2 * math.Pi / 20
		x := ct - accelEnd
		s.SpeedKmh = cruiseKmh + 1.5*math.Sin(w*x)
		s.AccelMPS2 = 1.5 / 3.6 * w * math.Cos(w*x)
		s.Throttle = 18 + 6*s.AccelMPS2
	default:
		// Braking: v = vmax·(1 − x)^1.3 (harder at first, easing to the stop).
		x := (ct - cruiseEnd) / brakeTime
		s.SpeedKmh = cruiseKmh * math.Pow(1-x, 1.3)
		s.AccelMPS2 = -vmax * 1.3 * math.Pow(1-x, 0.3) / brakeTime
		s.Brake = true
		s.BrakeBar = 12 + 20*math.Pow(1-x, 0.3)
	}
	s.Gear = gearFor(s.SpeedKmh)
	if s.Gear == 0 {
		s.RPM = idleRPM
	} else {
		wheelRPM := s.SpeedKmh / 3.6 / (2 * math.Pi * wheelRadius) * 60
		s.RPM = math.Max(wheelRPM*gearRatios[s.Gear]*finalDrive, idleRPM+200*s.Throttle/75) // the clutch slips below
	}
	s.Load = math.Min(100, 15+0.9*s.Throttle+s.RPM/300)
	if s.Brake {
		s.Load = 12
	}
	b.warm(ts, s.Load)
	s.CoolantC, s.OilC = b.coolant, b.oil
	s.AirC = ambientC + 8 + 4*s.Load/100
	return s
}

// gearFor is the gear a driver holds at a speed (km/h): neutral at a stop.
func gearFor(kmh float64) int {
	switch {
	case kmh < 0.5:
		return 0
	case kmh < 18:
		return 1
	case kmh < 35:
		return 2
	case kmh < 55:
		return 3
	case kmh < 72:
		return 4
	case kmh < 88:
		return 5
	}
	return 6
}

// warm advances the temperatures to ts: the coolant warms toward its
// thermostat's 90 °C (faster under load), the oil follows it, slower.
func (b *Bus) warm(ts, load float64) {
	dt := ts - b.thermT
	if dt <= 0 {
		return
	}
	b.thermT = ts
	target := 90 + 4*load/100
	b.coolant += (target - b.coolant) * (1 - math.Exp(-dt*(1+load/100)/300))
	b.oil += (b.coolant - 2 - b.oil) * (1 - math.Exp(-dt/600))
}

// frame makes message i's frame at t.
func (b *Bus) frame(i int, t int64) Frame {
	m := Messages[i]
	s := b.StateAt(t - b.origin)
	f := Frame{Time: t, ID: m.ID, DLC: m.DLC}
	d := f.Data[:]
	ctr := b.counter[i]
	b.counter[i] = (ctr + 1) & 15
	noise := b.rng.NormFloat64
	switch m.ID {
	case IDEngine:
		rpm := s.RPM + 6*noise()
		binary.LittleEndian.PutUint16(d, uint16(clamp(math.Round(rpm/0.25), 0, 65535)))
		d[2] = byte(clamp(math.Round(s.Throttle/0.4), 0, 250))
		d[3] = byte(clamp(math.Round(s.Load/0.4), 0, 250))
		d[6] = ctr
	case IDSpeed:
		v := s.SpeedKmh
		if v > 0.5 {
			v += 0.03 * noise()
		}
		binary.LittleEndian.PutUint16(d, uint16(clamp(math.Round(v/0.01), 0, 65535)))
		binary.LittleEndian.PutUint16(d[2:], uint16(int16(clamp(math.Round((s.AccelMPS2+0.02*noise())/0.01), -32768, 32767))))
		d[6] = ctr
	case IDTemps:
		d[0] = byte(clamp(math.Round(s.CoolantC+40), 0, 255))
		d[1] = byte(clamp(math.Round(s.OilC+40), 0, 255))
		d[2] = byte(clamp(math.Round(s.AirC+40), 0, 255))
		d[3] = ctr
	case IDGearBrk:
		d[0] = byte(s.Gear)
		if s.Brake {
			d[1] = 1
			d[2] = byte(clamp(math.Round(s.BrakeBar/0.5), 0, 255))
		}
		d[3] = ctr
	}
	if m.DLC == 8 {
		d[7] = checksum(m.ID, d[:7])
	}
	return f
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }
