package relay

import "time"

// ParkedNow counts the directions parked at this moment.
func ParkedNow() int { return parkedNow() }

// SetParkAfter sets how long a direction lingers before parking, until
// the test ends.
func SetParkAfter(d time.Duration) (restore func()) {
	old := parkAfter
	parkAfter = d
	return func() { parkAfter = old }
}
