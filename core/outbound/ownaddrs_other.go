//go:build !linux

package outbound

import "errors"

// openAddrWatch: no change notification here; the cache keeps its list
// for ownTTL.
func openAddrWatch() (addrWatch, error) { return nil, errors.ErrUnsupported }
