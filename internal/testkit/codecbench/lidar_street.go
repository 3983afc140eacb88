package codecbench

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/signals"
	"github.com/sensorium-io/sensorium/simulate/lidar"
)

// lidarInput is 2 s of the street LIDAR (20 sweeps).
type lidarInput struct {
	desc    *signals.PointCloud
	sweeps  []codecs.Sweep
	encoded [][]byte
	decoded []codecs.Sweep
	xyz     int // bytes of the permutation and x, y, z columns

	dracoDecode time.Duration // real scans: draco_decoder's time, best of three
}

func init() {
	Register(Case{
		Name:   "LIDAR 32-beam street, 1 mm (20 sweeps)",
		Data:   lidarData,
		Encode: encodeLidar,
		Decode: decodeLidar,
		Verify: verifyLidar,
		Peers:  lidarPeers,
		Goal:   0.5,
	})
}

// lidarData's raw bytes are what the Velodyne ROS driver publishes per point
// (PointXYZIRT): x, y, z, intensity as float32, ring as uint16, time as
// float32 seconds from the sweep's start — 22 bytes.
func lidarData() ([]byte, any, error) {
	st := lidar.New(3)
	in := &lidarInput{desc: &signals.PointCloud{Rings: lidar.Rings, Resolution: 0.001}}
	var raw []byte
	for i := 0; i < 20; i++ {
		var sw codecs.Sweep
		st.Sweep(int64(i)*100_000_000, &sw)
		for _, p := range sw.Points {
			for _, v := range []float32{p.X, p.Y, p.Z, float32(p.Intensity)} {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
			}
			raw = binary.LittleEndian.AppendUint16(raw, uint16(p.Ring))
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(p.TimeOffset)/1e9))
		}
		in.sweeps = append(in.sweeps, sw)
	}
	return raw, in, nil
}

func encodeLidar(input any) (int, error) {
	in := input.(*lidarInput)
	in.encoded, in.xyz = in.encoded[:0], 0
	n := 0
	for i := range in.sweeps {
		f, err := codecs.AppendSweepFrame(nil, in.desc, &in.sweeps[i])
		if err != nil {
			return 0, err
		}
		sizes, err := codecs.ColumnSizes(f)
		if err != nil {
			return 0, err
		}
		in.xyz += sizes[0] + sizes[1] + sizes[2] + sizes[3]
		in.encoded = append(in.encoded, f)
		n += len(f)
	}
	return n, nil
}

func decodeLidar(input any) error {
	in := input.(*lidarInput)
	if len(in.decoded) != len(in.encoded) {
		in.decoded = make([]codecs.Sweep, len(in.encoded))
	}
	for i, f := range in.encoded {
		if err := codecs.DecodeSweepFrame(f, in.desc, &in.decoded[i]); err != nil {
			return err
		}
	}
	return nil
}

// verifyLidar: coordinates within half the resolution (plus the float32
// rounding of the result), the rest exact.
func verifyLidar(input any) error {
	in := input.(*lidarInput)
	off := func(a, b float32) bool {
		return math.Abs(float64(a-b)) > in.desc.Resolution/2+math.Abs(float64(a))*0x1p-23
	}
	for i := range in.sweeps {
		a, b := in.sweeps[i].Points, in.decoded[i].Points
		if len(a) != len(b) {
			return fmt.Errorf("sweep %d: %d points, want %d", i, len(b), len(a))
		}
		for j := range a {
			p, q := a[j], b[j]
			if off(p.X, q.X) || off(p.Y, q.Y) || off(p.Z, q.Z) ||
				p.Intensity != q.Intensity || p.Ring != q.Ring || p.TimeOffset != q.TimeOffset {
				return fmt.Errorf("sweep %d point %d: %+v, want %+v", i, j, q, p)
			}
		}
	}
	return nil
}

// lidarPeers: our x, y, z alone, and Google Draco on x, y, z at a similar
// quantisation (-qp 18 ≈ 0.8 mm over this scene's 200 m box), when
// draco_encoder is installed (scripts/install-bench-deps.sh).
func lidarPeers(input any) (map[string]int, error) {
	in := input.(*lidarInput)
	out := map[string]int{"ours x y z only": in.xyz}
	enc, err := exec.LookPath("draco_encoder")
	if err != nil {
		return out, nil
	}
	dir, err := os.MkdirTemp("", "lidar-draco")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(dir)
	total := 0
	for i := range in.sweeps {
		ply, drc := filepath.Join(dir, "s.ply"), filepath.Join(dir, "s.drc")
		if err := writePLY(ply, in.sweeps[i].Points); err != nil {
			return out, err
		}
		if b, err := exec.Command(enc, "-point_cloud", "-qp", "18", "-cl", "10", "-i", ply, "-o", drc).CombinedOutput(); err != nil {
			return out, fmt.Errorf("draco_encoder: %v: %s", err, b)
		}
		fi, err := os.Stat(drc)
		if err != nil {
			return out, err
		}
		total += int(fi.Size())
	}
	out["draco x y z (-qp 18)"] = total
	return out, nil
}

func writePLY(path string, pts []codecs.Point) error {
	b := fmt.Appendf(nil, "ply\nformat binary_little_endian 1.0\nelement vertex %d\nproperty float x\nproperty float y\nproperty float z\nend_header\n", len(pts))
	for _, p := range pts {
		for _, v := range []float32{p.X, p.Y, p.Z} {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return os.WriteFile(path, b, 0o644)
}
