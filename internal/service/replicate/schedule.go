package replicate

import (
	"fmt"
	"strings"
	"time"
)

// Schedule is the daily windows in which the replicator sends, in local
// time (e.g. nights only, when the site's uplink is idle). The zero
// Schedule is always open.
type Schedule struct {
	windows []window
	loc     *time.Location
}

// window is [from, to) in minutes after midnight; to < from wraps past
// midnight (22:00-06:00).
type window struct{ from, to int }

// ParseSchedule reads windows such as "22:00-06:00" or
// "12:00-13:00,22:00-06:00" (HH:MM-HH:MM, comma separated) in loc. ""
// (or "always") is always open. A window whose ends are equal is refused: it would mean
// either never or always.
func ParseSchedule(s string, loc *time.Location) (Schedule, error) {
	if loc == nil {
		loc = time.Local
	}
	sc := Schedule{loc: loc}
	if t := strings.TrimSpace(s); t == "" || t == "always" {
		return sc, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		a, b, ok := strings.Cut(part, "-")
		if !ok {
			return Schedule{}, fmt.Errorf("schedule window %q is not HH:MM-HH:MM", part)
		}
		from, err := parseClock(a)
		if err != nil {
			return Schedule{}, fmt.Errorf("schedule window %q: %w", part, err)
		}
		to, err := parseClock(b)
		if err != nil {
			return Schedule{}, fmt.Errorf("schedule window %q: %w", part, err)
		}
		if from == to {
			return Schedule{}, fmt.Errorf("schedule window %q starts where it ends; use 00:00-24:00 for all day", part)
		}
		sc.windows = append(sc.windows, window{from, to})
	}
	return sc, nil
}

// parseClock reads HH:MM (00:00 to 24:00) as minutes after midnight.
func parseClock(s string) (int, error) {
	s = strings.TrimSpace(s)
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	if _, err := fmt.Sscanf(s, "%2d:%2d", &h, &m); err != nil {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	if h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%q is not a time of day", s)
	}
	return h*60 + m, nil
}

// Always reports whether the schedule has no windows (always open).
func (s Schedule) Always() bool { return len(s.windows) == 0 }

// String gives the windows back as they are parsed.
func (s Schedule) String() string {
	if s.Always() {
		return "always"
	}
	parts := make([]string, len(s.windows))
	for i, w := range s.windows {
		parts[i] = fmt.Sprintf("%02d:%02d-%02d:%02d", w.from/60, w.from%60, w.to/60, w.to%60)
	}
	return strings.Join(parts, ",")
}

// minuteOf is t's local (wall-clock) minute after midnight.
func (s Schedule) minuteOf(t time.Time) int {
	lt := t.In(s.loc)
	return lt.Hour()*60 + lt.Minute()
}

func (w window) contains(min int) bool {
	if w.from < w.to {
		return w.from <= min && min < w.to
	}
	return min >= w.from || min < w.to // wraps past midnight
}

// Open reports whether t is inside a window.
func (s Schedule) Open(t time.Time) bool {
	if s.Always() {
		return true
	}
	min := s.minuteOf(t)
	for _, w := range s.windows {
		if w.contains(min) {
			return true
		}
	}
	return false
}

// NextOpen is the first time at or after t when the schedule is open: t
// itself when it is open now.
func (s Schedule) NextOpen(t time.Time) time.Time {
	if s.Open(t) {
		return t
	}
	return s.nextChange(t, true)
}

// NextClose is the first time after t when an open schedule closes (the
// zero time when it never does).
func (s Schedule) NextClose(t time.Time) time.Time {
	if s.Always() || !s.Open(t) {
		return time.Time{}
	}
	return s.nextChange(t, false)
}

// nextChange walks minute boundaries from t to the first one where Open
// becomes want; two days of minutes bound the walk. Daylight-saving days
// are handled by asking Open at each wall-clock minute rather than adding
// durations to midnight.
func (s Schedule) nextChange(t time.Time, want bool) time.Time {
	m := t.Truncate(time.Minute).Add(time.Minute)
	for i := 0; i < 2*24*60+2; i++ {
		if s.Open(m) == want {
			return m
		}
		m = m.Add(time.Minute)
	}
	return time.Time{}
}
