package codecs

import (
	"fmt"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sensorium-io/sensorium/signals"
)

// Layout is how a query lays out kinds whose frames hold many elements (the
// points of a LIDAR sweep, the detections of a RADAR scan).
type Layout uint8

const (
	// LayoutRows gives one row per element (per sample, point, detection), with
	// the frame's time and the element's index in it.
	LayoutRows Layout = iota
	// LayoutFrames gives one row per frame, with list columns.
	LayoutFrames
)

// ArrowOptions shape a query's result.
type ArrowOptions struct {
	Fields []string // the kind's fields (channels, point fields …) to return; empty: all
	Layout Layout
}

// TimeRange selects rows by their time: [Start, End). All selects every row
// (server-time queries select whole fragments).
type TimeRange struct {
	Start, End int64
	All        bool
}

// Contains reports whether t is in the range.
func (r TimeRange) Contains(t int64) bool { return r.All || t >= r.Start && t < r.End }

// FragmentContext is what a decoder may need of the fragment a frame is in.
// Frames of one fragment come in order with the same *FragmentContext, so a
// decoder may keep state across them (a running sample count) and reset it
// when the pointer changes.
type FragmentContext struct {
	Number uint64
	Tags   map[string]string // the producer's fragment metadata
}

// Frame is one frame handed to an ArrowDecoder.
type Frame struct {
	Data     []byte
	Time     int64 // ns: the MKV block time (millisecond resolution)
	Key      bool
	Fragment *FragmentContext
	// Codec says how Data is encoded for the kinds whose frames carry no
	// header of their own (PCM audio): 0 as the kind defines its frames,
	// LosslessAudio for an audio frame EncodeAudioFrame made. Kinds whose
	// frames name their codec ignore it.
	Codec ID
}

// ArrowDecoder decodes the frames of one track into Arrow record batches,
// appending straight into the builders of a RecordBuilder of its Schema.
// A corrupt frame is an error wrapping ErrCorrupt: never a panic, never an
// allocation its size does not justify.
type ArrowDecoder interface {
	Schema() *arrow.Schema
	// Append decodes f and appends its rows whose times are in r; it returns
	// how many rows it appended.
	Append(b *array.RecordBuilder, f Frame, r TimeRange) (int, error)
}

// ArrowDecoderFactory makes an ArrowDecoder for a description.
type ArrowDecoderFactory func(desc signals.Description, opts ArrowOptions) (ArrowDecoder, error)

var arrowDecoders = struct {
	sync.RWMutex
	m map[signals.Kind]ArrowDecoderFactory
}{m: map[signals.Kind]ArrowDecoderFactory{}}

// RegisterArrowDecoder makes NewArrowDecoder use f for a kind; each kind
// registers in an init function. Registering a kind twice panics.
func RegisterArrowDecoder(kind signals.Kind, f ArrowDecoderFactory) {
	arrowDecoders.Lock()
	defer arrowDecoders.Unlock()
	if _, dup := arrowDecoders.m[kind]; dup {
		panic("codecs: Arrow decoder for " + kind.String() + " registered twice")
	}
	arrowDecoders.m[kind] = f
}

// NewArrowDecoder returns a decoder of frames of desc into Arrow. Bad options
// (an unknown field, a layout the kind does not have) are errors wrapping
// ErrBadOptions.
func NewArrowDecoder(desc signals.Description, opts ArrowOptions) (ArrowDecoder, error) {
	arrowDecoders.RLock()
	f := arrowDecoders.m[desc.Kind()]
	arrowDecoders.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("codecs: %w: no Arrow decoder for %s signals", ErrBadOptions, desc.Kind())
	}
	return f(desc, opts)
}

// ErrBadOptions means a query asked for something the kind does not have.
var ErrBadOptions = fmt.Errorf("bad query options")
