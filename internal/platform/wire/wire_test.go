package wire

import "testing"

func TestFragmentHeader(t *testing.T) {
	h := FragmentHeader("pump.1", "gw-7", 12, 11, 2)
	for k, want := range map[string]string{
		HeaderMsgID: MsgID("pump.1", "gw-7", 12, 2), HeaderProducerID: "gw-7", HeaderProducerSeq: "12", HeaderProducerPrev: "11",
	} {
		if got := h[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if _, ok := FragmentHeader("pump.1", "gw-7", 1, 0, 0)[HeaderProducerPrev]; ok {
		t.Error("prev 0 (no constraint) was sent as a header")
	}
}
