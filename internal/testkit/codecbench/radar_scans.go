package codecbench

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/klauspost/compress/zstd"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/radar"
)

// radarInput is 60 s of the automotive RADAR: 1200 scans of detections, or
// of range-Doppler maps.
type radarInput struct {
	scans   [][]codecs.Detection
	maps    [][]float32
	arr     *signals.Array
	encoded [][]byte
	decoded []any
}

var radarDetections = &signals.Detections{}

func init() {
	Register(Case{
		Name: "RADAR detections (20 Hz, 60 s)", Data: func() ([]byte, any, error) { return radarData(false) },
		Encode: encodeRadar, Decode: decodeRadar, Verify: verifyRadar, Peers: zstdPerScan, Goal: 0.7,
	})
	Register(Case{
		Name: "RADAR range-Doppler 256×64 f32 (20 Hz, 10 s)", Data: func() ([]byte, any, error) { return radarData(true) },
		Encode: encodeRadar, Decode: decodeRadar, Verify: verifyRadar,
	})
}

// radarData: the raw bytes are the detections as the sensor's structs (six
// float32 each) or the maps as float32, little endian.
func radarData(maps bool) ([]byte, any, error) {
	r := radar.New(4)
	in := &radarInput{}
	var raw []byte
	scans := 1200
	if maps {
		scans = 200
		in.arr = &signals.Array{ElemType: signals.Float32, Rows: radar.RangeBins, Cols: radar.DopplerBins, Unit: "dB",
			RowAxis: signals.Axis{Name: "range", Unit: "m", Step: radar.RangeStep},
			ColAxis: signals.Axis{Name: "radial_velocity", Unit: "m/s", Start: -radar.DopplerBins / 2 * radar.DopplerStep, Step: radar.DopplerStep}}
	}
	for i := 0; i < scans; i++ {
		rd := make([]float32, radar.RangeBins*radar.DopplerBins)
		dets := r.Scan(nil, rd)
		if maps {
			in.maps = append(in.maps, rd)
			for _, v := range rd {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
			}
			continue
		}
		in.scans = append(in.scans, dets)
		for _, d := range dets {
			for _, v := range []float32{d.Range, d.Azimuth, d.Elevation, d.RadialVelocity, d.RCS, d.SNR} {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
			}
		}
	}
	return raw, in, nil
}

// zstdPerScan is zstd applied to each scan on its own, as a frame must be
// coded (a scan is one frame): what a general compressor achieves under the
// constraint our codec works under. The table's zstd column compresses the
// whole minute at once, across scans.
func zstdPerScan(input any) (map[string]int, error) {
	in := input.(*radarInput)
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	total := 0
	for _, dets := range in.scans {
		var raw []byte
		for _, d := range dets {
			for _, v := range []float32{d.Range, d.Azimuth, d.Elevation, d.RadialVelocity, d.RCS, d.SNR} {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
			}
		}
		total += len(enc.EncodeAll(raw, nil))
	}
	return map[string]int{"zstd per scan": total}, nil
}

func encodeRadar(input any) (int, error) {
	in := input.(*radarInput)
	in.encoded = in.encoded[:0]
	n := 0
	for i := range max(len(in.scans), len(in.maps)) {
		var f []byte
		var err error
		if in.arr != nil {
			f, err = codecs.AppendArrayFrame(nil, in.arr, int64(i)*50e6, codecs.Column{Type: signals.Float32, F32: in.maps[i]})
		} else {
			f, err = codecs.AppendDetectionsFrame(nil, radarDetections, int64(i)*50e6, in.scans[i], nil)
		}
		if err != nil {
			return 0, err
		}
		in.encoded = append(in.encoded, f)
		n += len(f)
	}
	return n, nil
}

func decodeRadar(input any) error {
	in := input.(*radarInput)
	in.decoded = in.decoded[:0]
	for _, f := range in.encoded {
		if in.arr != nil {
			_, v, err := codecs.DecodeArrayFrame(f, in.arr, codecs.Column{})
			if err != nil {
				return err
			}
			in.decoded = append(in.decoded, v.F32)
			continue
		}
		_, dets, _, err := codecs.DecodeDetectionsFrame(f, radarDetections, nil)
		if err != nil {
			return err
		}
		in.decoded = append(in.decoded, dets)
	}
	return nil
}

func verifyRadar(input any) error {
	in := input.(*radarInput)
	for i, d := range in.decoded {
		if in.arr != nil {
			got := d.([]float32)
			for j, v := range in.maps[i] {
				if math.Float32bits(got[j]) != math.Float32bits(v) {
					return fmt.Errorf("map %d value %d differs", i, j)
				}
			}
			continue
		}
		got := d.([]codecs.Detection)
		if len(got) != len(in.scans[i]) {
			return fmt.Errorf("scan %d: %d detections, want %d", i, len(got), len(in.scans[i]))
		}
		for j, x := range in.scans[i] {
			if got[j] != x {
				return fmt.Errorf("scan %d detection %d differs", i, j)
			}
		}
	}
	return nil
}
