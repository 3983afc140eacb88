package signals

import (
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
)

// Metadata keys of query result schemas.
const (
	// MetaUnit is the field metadata key of a channel's unit (present when the
	// unit is set).
	MetaUnit = "unit"
	// MetaSampleRate is the schema metadata key of the signal's sample rate in
	// Hz, formatted so that it parses back to the same float64, for consumers
	// that window or resample the columns.
	MetaSampleRate = "sensorium.sample_rate"
)

// TimeType returns the Arrow type of the time column: timestamp[ns, tz=UTC],
// ns since the Unix epoch.
func TimeType() arrow.DataType { return arrow.FixedWidthTypes.Timestamp_ns }

// ArrowSchema returns the schema of a query result for the named channels (all,
// in description order, when names is empty): the non-null TimeField column of
// TimeType(), then one non-null column per channel of SampleType.ArrowType(), named
// after the channel, with field metadata MetaUnit when the unit is set. It also
// returns the channel indexes in schema order, so a reader knows which
// interleaved values go to which column. An unknown or repeated channel name is
// an error naming it.
func (d *Scalar) ArrowSchema(names []string) (*arrow.Schema, []int, error) {
	if err := d.validate(); err != nil {
		return nil, nil, fmt.Errorf("signals: arrow schema: %w", err)
	}
	idx := make([]int, 0, max(len(names), len(d.Channels)))
	if len(names) == 0 {
		for i := range d.Channels {
			idx = append(idx, i)
		}
	} else {
		var picked [MaxChannels / 64]uint64 // a set of channel indexes, without allocating
		for _, name := range names {
			i := d.ChannelIndex(name)
			if i < 0 {
				return nil, nil, fmt.Errorf("signals: arrow schema: unknown channel %q", name)
			}
			if picked[i/64]&(1<<(i%64)) != 0 {
				return nil, nil, fmt.Errorf("signals: arrow schema: channel %q selected twice", name)
			}
			picked[i/64] |= 1 << (i % 64)
			idx = append(idx, i)
		}
	}
	fields := make([]arrow.Field, 0, 1+len(idx))
	fields = append(fields, arrow.Field{Name: TimeField, Type: TimeType()})
	typ := d.SampleType.ArrowType()
	for _, i := range idx {
		c := d.Channels[i]
		f := arrow.Field{Name: c.Name, Type: typ}
		if c.Unit != "" {
			f.Metadata = arrow.NewMetadata([]string{MetaUnit}, []string{c.Unit})
		}
		fields = append(fields, f)
	}
	md := arrow.NewMetadata([]string{MetaSampleRate}, []string{strconv.FormatFloat(d.SampleRate, 'g', -1, 64)})
	return arrow.NewSchema(fields, &md), idx, nil
}
