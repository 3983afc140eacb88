package codecbench

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sensorium-io/sensorium/codecs"
	"github.com/sensorium-io/sensorium/signals"
)

// Real LIDAR scans against Draco at the same quantisation step. No scan is
// in the repository (a 64-beam sweep is 2 MB): $SENSORIUM_LIDAR_SCANS names
// a folder of scans in KITTI's velodyne layout (.bin files of float32 x, y,
// z, reflectance per point; KITTI's HDL-64E and PandaSet's Pandar64 scans
// come as such), and each is measured whole and cropped to a front camera's
// view (x > 0, |azimuth| < 45°).
//
// KITTI stores a sweep beam by beam, each in firing order from azimuth 0, so
// the beam (ring) of a point is recovered where the azimuth crosses 0 going
// up; scans in another order get whatever that rule gives, and the codec
// keeps their order as it is. The reflectance becomes the intensity in 1/100
// (KITTI's is a float with two decimals; PandaSet's is 0 to 255 and stays
// so). Draco codes x, y, z at -qp 16 with the step extent / (2^16 − 1), and
// ours uses that step as its resolution, keeping the points' order, ring and
// intensity besides.
func init() {
	dir := os.Getenv("SENSORIUM_LIDAR_SCANS")
	if dir == "" {
		return
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
	sort.Strings(files)
	for _, f := range files {
		for _, crop := range []bool{false, true} {
			name := "LIDAR real " + strings.TrimSuffix(filepath.Base(f), ".bin")
			if crop {
				name += ", camera crop"
			}
			Register(Case{
				Name:          name + " (-qp 16 step)",
				Data:          func() ([]byte, any, error) { return realScan(f, crop) },
				Encode:        encodeLidar,
				Decode:        decodeLidar,
				Verify:        verifyLidar,
				Peers:         realLidarPeers,
				PeerGoal:      "draco x y z (-qp 16)",
				PeerGoalRatio: 0.85,
				Note:          lidarNote,
			})
		}
	}
}

func realScan(path string, crop bool) ([]byte, any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	n := len(b) / 16
	var sw codecs.Sweep
	ring, prevAz := int16(0), 0.0
	maxI := float32(0)
	for i := range n {
		v := func(j int) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b[16*i+4*j:])) }
		maxI = max(maxI, v(3))
	}
	scale := float32(100) // KITTI: reflectance 0 to 1 in hundredths
	if maxI > 1 {
		scale = 1 // already 0 to 255
	}
	lo, hi := [3]float64{math.Inf(1), math.Inf(1), math.Inf(1)}, [3]float64{math.Inf(-1), math.Inf(-1), math.Inf(-1)}
	for i := range n {
		v := func(j int) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b[16*i+4*j:])) }
		x, y, z := v(0), v(1), v(2)
		az := math.Atan2(float64(y), float64(x))
		if crop && (x <= 0 || math.Abs(az) >= math.Pi/4) {
			continue
		}
		// The ring is recovered from the points kept, as a reader of a
		// cropped file would have to.
		if len(sw.Points) > 0 && prevAz < 0 && az >= 0 {
			ring++
		}
		prevAz = az
		sw.Points = append(sw.Points, codecs.Point{X: x, Y: y, Z: z, Intensity: int16(math.Round(float64(v(3) * scale))), Ring: ring})
		for j, c := range []float32{x, y, z} {
			lo[j], hi[j] = min(lo[j], float64(c)), max(hi[j], float64(c))
		}
	}
	extent := max(hi[0]-lo[0], hi[1]-lo[1], hi[2]-lo[2])
	in := &lidarInput{desc: &signals.PointCloud{Rings: uint16(ring) + 1, Resolution: extent / (1<<16 - 1)}, sweeps: []codecs.Sweep{sw}}
	var raw []byte
	for _, p := range sw.Points {
		for _, c := range []float32{p.X, p.Y, p.Z, float32(p.Intensity) / scale} {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(c))
		}
	}
	return raw, in, nil
}

// realLidarPeers: Draco on x, y, z at -qp 16, and how long draco_decoder
// takes to decode it (best of three, the process's start included).
func realLidarPeers(input any) (map[string]int, error) {
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
	ply, drc, back := filepath.Join(dir, "s.ply"), filepath.Join(dir, "s.drc"), filepath.Join(dir, "back.ply")
	if err := writePLY(ply, in.sweeps[0].Points); err != nil {
		return out, err
	}
	if b, err := exec.Command(enc, "-point_cloud", "-qp", "16", "-cl", "10", "-i", ply, "-o", drc).CombinedOutput(); err != nil {
		return out, fmt.Errorf("draco_encoder: %v: %s", err, b)
	}
	fi, err := os.Stat(drc)
	if err != nil {
		return out, err
	}
	out["draco x y z (-qp 16)"] = int(fi.Size())
	if dec, err := exec.LookPath("draco_decoder"); err == nil {
		best := time.Duration(1 << 62)
		for range 3 {
			t := time.Now()
			if b, err := exec.Command(dec, "-i", drc, "-o", back).CombinedOutput(); err != nil {
				return out, fmt.Errorf("draco_decoder: %v: %s", err, b)
			}
			best = min(best, time.Since(t))
		}
		in.dracoDecode = best
	}
	return out, nil
}

// lidarNote: ours (x y z, and everything) against Draco, and decode times.
func lidarNote(input any, r *Result) string {
	in := input.(*lidarInput)
	pts := len(in.sweeps[0].Points)
	s := fmt.Sprintf("%d points at %.2f mm; ours %.1f bits/point x y z (%.1f with order, ring, intensity)",
		pts, in.desc.Resolution*1000, float64(in.xyz*8)/float64(pts), float64(r.Encoded*8)/float64(pts))
	if d, ok := r.Peers["draco x y z (-qp 16)"]; ok {
		s += fmt.Sprintf(", draco %.1f: x y z %.3f×, all %.3f× draco", float64(d*8)/float64(pts), float64(in.xyz)/float64(d), float64(r.Encoded)/float64(d))
	}
	if in.dracoDecode > 0 {
		ours := float64(r.Raw) / (r.DecodeMBps * 1e6) * 1e6
		s += fmt.Sprintf("; decode ours %.0f µs, draco_decoder %d µs (process included)", ours, in.dracoDecode.Microseconds())
	}
	return s
}
