package sysproxy

import (
	"testing"
	"unsafe"
)

// The structures passed to WinINet and RAS must have their C layout.
func TestWinStructLayout(t *testing.T) {
	ptr := unsafe.Sizeof(uintptr(0))
	var o perConnOption
	var l perConnOptionList
	wantOpt, wantValueAt, wantList, wantOptionsAt := uintptr(16), uintptr(8), uintptr(32), uintptr(24)
	if ptr == 4 {
		wantOpt, wantValueAt, wantList, wantOptionsAt = 12, 4, 20, 16
	}
	if unsafe.Sizeof(o) != wantOpt || unsafe.Offsetof(o.Value) != wantValueAt {
		t.Errorf("INTERNET_PER_CONN_OPTIONW: size %d, union at %d", unsafe.Sizeof(o), unsafe.Offsetof(o.Value))
	}
	if unsafe.Sizeof(l) != wantList || unsafe.Offsetof(l.Options) != wantOptionsAt {
		t.Errorf("INTERNET_PER_CONN_OPTION_LISTW: size %d, pOptions at %d", unsafe.Sizeof(l), unsafe.Offsetof(l.Options))
	}
	if n := unsafe.Sizeof(rasEntryName{}); n != 1048 {
		t.Errorf("RASENTRYNAMEW: size %d, want 1048", n)
	}
	o.setDWORD(3)
	if o.dword() != 3 {
		t.Error("DWORD round trip")
	}
	s := []uint16{'x', 0}
	o.setString(&s[0])
	if o.str() != &s[0] {
		t.Error("LPWSTR round trip")
	}
}
