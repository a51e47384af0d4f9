//go:build !linux

package relay

// parkSlot parks nothing outside Linux: the side keeps its goroutine and
// waits on it, as Relay's caller does.
type parkSlot struct{}

func (p *parkSlot) open(*side)     {}
func (p *parkSlot) parkable() bool { return false }
func (p *parkSlot) arm() bool      { return false }
func (p *parkSlot) disarm()        {}
func (p *parkSlot) close()         {}

// Hold holds nothing where nothing parks.
func Hold() (release func()) { return func() {} }
