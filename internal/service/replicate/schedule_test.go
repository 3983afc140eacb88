package replicate

import (
	"strings"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	cases := []struct {
		in      string
		want    string // String() of the parsed schedule
		wantErr string
	}{
		{"", "always", ""},
		{"22:00-06:00", "22:00-06:00", ""},
		{" 12:00-13:30 , 22:00-06:00", "12:00-13:30,22:00-06:00", ""},
		{"00:00-24:00", "00:00-24:00", ""},
		{"22:00", "", "is not HH:MM-HH:MM"},
		{"22-06", "", `"22" is not HH:MM`},
		{"25:00-06:00", "", "is not a time of day"},
		{"22:60-06:00", "", "is not a time of day"},
		{"24:30-06:00", "", "is not a time of day"},
		{"06:00-06:00", "", "starts where it ends"},
		{"22:00-06:00,", "", "is not HH:MM-HH:MM"},
		{"ab:cd-06:00", "", "is not HH:MM"},
	}
	for _, c := range cases {
		s, err := ParseSchedule(c.in, time.UTC)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseSchedule(%q): error %v, want one saying %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || s.String() != c.want {
			t.Errorf("ParseSchedule(%q) = %q, %v; want %q", c.in, s.String(), err, c.want)
		}
	}
}

func TestScheduleOpenAndNext(t *testing.T) {
	day := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	night, _ := ParseSchedule("22:00-06:00", time.UTC)
	two, _ := ParseSchedule("12:00-13:00,22:00-06:00", time.UTC)
	always, _ := ParseSchedule("", time.UTC)
	cases := []struct {
		name       string
		s          Schedule
		t          time.Time
		open       bool
		next, shut time.Time // NextOpen, NextClose
	}{
		{"night, before midnight", night, at(23, 0), true, at(23, 0), at(30, 0)},
		{"night, after midnight", night, at(5, 59), true, at(5, 59), at(6, 0)},
		{"night, at its end", night, at(6, 0), false, at(22, 0), time.Time{}},
		{"night, at its start", night, at(22, 0), true, at(22, 0), at(30, 0)},
		{"night, midday", night, at(12, 0).Add(30 * time.Second), false, at(22, 0), time.Time{}},
		{"two windows, between", two, at(13, 0), false, at(22, 0), time.Time{}},
		{"two windows, morning", two, at(7, 0), false, at(12, 0), time.Time{}},
		{"two windows, lunch", two, at(12, 30), true, at(12, 30), at(13, 0)},
		{"always", always, at(3, 0), true, at(3, 0), time.Time{}},
	}
	for _, c := range cases {
		if got := c.s.Open(c.t); got != c.open {
			t.Errorf("%s: Open(%v) = %v", c.name, c.t, got)
		}
		if got := c.s.NextOpen(c.t); !got.Equal(c.next) {
			t.Errorf("%s: NextOpen(%v) = %v, want %v", c.name, c.t, got, c.next)
		}
		if got := c.s.NextClose(c.t); !got.Equal(c.shut) {
			t.Errorf("%s: NextClose(%v) = %v, want %v", c.name, c.t, got, c.shut)
		}
	}
}

// Local time is wall-clock time: across a daylight-saving change the
// window still opens at 22:00 on the clock.
func TestScheduleFollowsTheWallClock(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	s, _ := ParseSchedule("22:00-06:00", loc)
	// 2026-03-29: clocks go from 02:00 to 03:00 in Berlin.
	before := time.Date(2026, 3, 29, 12, 0, 0, 0, loc)
	next := s.NextOpen(before)
	if want := time.Date(2026, 3, 29, 22, 0, 0, 0, loc); !next.Equal(want) {
		t.Errorf("NextOpen on the day clocks change = %v, want %v", next, want)
	}
	if !s.Open(time.Date(2026, 3, 29, 3, 30, 0, 0, loc)) || s.Open(time.Date(2026, 3, 29, 6, 0, 0, 0, loc)) {
		t.Errorf("the night window on the day clocks change is wrong")
	}
}
