package sysproxy

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	wininet            = windows.NewLazySystemDLL("wininet.dll")
	procQueryOption    = wininet.NewProc("InternetQueryOptionW")
	procSetOption      = wininet.NewProc("InternetSetOptionW")
	rasapi32           = windows.NewLazySystemDLL("rasapi32.dll")
	procRasEnumEntries = rasapi32.NewProc("RasEnumEntriesW")
	kernel32           = windows.NewLazySystemDLL("kernel32.dll")
	procGlobalFree     = kernel32.NewProc("GlobalFree")
	errRASGrowing      = errors.New("RasEnumEntriesW: the list kept growing")
)

const (
	internetOptionRefresh             = 37
	internetOptionSettingsChanged     = 39
	internetOptionPerConnectionOption = 75

	internetPerConnFlags       = 1
	internetPerConnFlagsUI     = 10 // Windows 7+: the flags as the settings UI shows them
	internetPerConnProxyServer = 2
	internetPerConnProxyBypass = 3

	errorBufferTooSmall = 603 // RAS: ERROR_BUFFER_TOO_SMALL
	rasMaxEntryName     = 256
	maxPath             = 260
)

// perConnOption is INTERNET_PER_CONN_OPTIONW. Its union (DWORD, LPWSTR or
// FILETIME) is a uint64: 8-aligned after 4 bytes of padding on 64-bit
// Windows, 4-aligned right after dwOption on 32-bit, as in C.
type perConnOption struct {
	Option uint32
	Value  uint64
}

func (o *perConnOption) setDWORD(v uint32) { o.Value = uint64(v) }
func (o *perConnOption) dword() uint32     { return uint32(o.Value) }

func (o *perConnOption) setString(p *uint16) {
	o.Value = 0
	*(**uint16)(unsafe.Pointer(&o.Value)) = p
}

func (o *perConnOption) str() *uint16 { return *(**uint16)(unsafe.Pointer(&o.Value)) }

// perConnOptionList is INTERNET_PER_CONN_OPTION_LISTW.
type perConnOptionList struct {
	Size        uint32
	Connection  *uint16
	OptionCount uint32
	OptionError uint32
	Options     *perConnOption
}

// rasEntryName is RASENTRYNAMEW (WINVER >= 0x500).
type rasEntryName struct {
	Size          uint32
	EntryName     [rasMaxEntryName + 1]uint16
	Flags         uint32
	PhonebookPath [maxPath + 1]uint16
}

type winINet struct{}

func (winINet) Name() string { return "windows" }

func newWinINet() (*winINet, error) {
	if err := procSetOption.Find(); err != nil {
		return nil, fmt.Errorf("WinINet: %w", err)
	}
	if err := procQueryOption.Find(); err != nil {
		return nil, fmt.Errorf("WinINet: %w", err)
	}
	return &winINet{}, nil
}

func (winINet) Wanted(host string, port int, bypass []string) (map[string]string, error) {
	conns, err := winConnections()
	if err != nil {
		return nil, err
	}
	return winWanted(conns, host, port, bypass), nil
}

func (winINet) Read(keys []string) (map[string]string, error) {
	conns, err := winConnections()
	if err != nil {
		return nil, err
	}
	byConn, err := groupWinKeys(keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(keys))
	for _, c := range slices.Sorted(maps.Keys(byConn)) {
		if !slices.Contains(conns, c) {
			continue // the dial-up/VPN entry was removed
		}
		flags, server, bypass, err := queryConn(c)
		if err != nil {
			return nil, err
		}
		for _, opt := range byConn[c] {
			switch opt {
			case winOptFlags:
				out[winKey(c, opt)] = strconv.FormatUint(uint64(flags), 10)
			case winOptServer:
				out[winKey(c, opt)] = server
			case winOptBypass:
				out[winKey(c, opt)] = bypass
			}
		}
	}
	return out, nil
}

func (winINet) Write(values map[string]string) error {
	byConn, err := groupWinKeys(slices.Collect(maps.Keys(values)))
	if err != nil {
		return err
	}
	for _, c := range slices.Sorted(maps.Keys(byConn)) {
		opts := make([]perConnOption, 0, 3)
		var keep [][]uint16 // the strings must outlive the call
		for _, opt := range byConn[c] {
			v := values[winKey(c, opt)]
			switch opt {
			case winOptFlags:
				n, err := strconv.ParseUint(v, 10, 32)
				if err != nil {
					return fmt.Errorf("WinINet: %s: %q is not a number", winKey(c, opt), v)
				}
				o := perConnOption{Option: internetPerConnFlags}
				o.setDWORD(uint32(n))
				opts = append(opts, o)
			case winOptServer, winOptBypass:
				o := perConnOption{Option: internetPerConnProxyServer}
				if opt == winOptBypass {
					o.Option = internetPerConnProxyBypass
				}
				if v != "" {
					u, err := windows.UTF16FromString(v)
					if err != nil {
						return fmt.Errorf("WinINet: %s: %w", winKey(c, opt), err)
					}
					keep = append(keep, u)
					o.setString(&u[0])
				}
				opts = append(opts, o)
			}
		}
		if err := setConn(c, opts); err != nil {
			return err
		}
		runtime.KeepAlive(keep)
	}
	// Tell running programs. One that is not told keeps using the old
	// settings, so a failure here fails the write (and it is rolled back).
	if err := setOption(internetOptionSettingsChanged); err != nil {
		return err
	}
	return setOption(internetOptionRefresh)
}

// groupWinKeys groups keys by connection ("" is the LAN).
func groupWinKeys(keys []string) (map[string][]string, error) {
	out := make(map[string][]string)
	for _, k := range keys {
		c, opt, err := parseWinKey(k)
		if err != nil {
			return nil, err
		}
		out[c] = append(out[c], opt)
	}
	return out, nil
}

func connName(c string) (*uint16, error) {
	if c == "" {
		return nil, nil // the LAN connection
	}
	return windows.UTF16PtrFromString(c)
}

// queryConn reads a connection's options. The flags are asked for as
// INTERNET_PER_CONN_FLAGS_UI, which alone reports auto-detection on
// Windows 7 and later, falling back to INTERNET_PER_CONN_FLAGS (as
// Microsoft documents); they are always set as INTERNET_PER_CONN_FLAGS.
func queryConn(c string) (flags uint32, server, bypass string, err error) {
	flags, server, bypass, err = queryConnAs(c, internetPerConnFlagsUI)
	if err != nil {
		flags, server, bypass, err = queryConnAs(c, internetPerConnFlags)
	}
	return flags, server, bypass, err
}

func queryConnAs(c string, flagsOption uint32) (flags uint32, server, bypass string, err error) {
	name, err := connName(c)
	if err != nil {
		return 0, "", "", fmt.Errorf("WinINet: connection %q: %w", c, err)
	}
	opts := []perConnOption{
		{Option: flagsOption},
		{Option: internetPerConnProxyServer},
		{Option: internetPerConnProxyBypass},
	}
	list := perConnOptionList{
		Connection:  name,
		OptionCount: uint32(len(opts)),
		Options:     &opts[0],
	}
	list.Size = uint32(unsafe.Sizeof(list))
	size := list.Size
	r, _, callErr := procQueryOption.Call(0, internetOptionPerConnectionOption,
		uintptr(unsafe.Pointer(&list)), uintptr(unsafe.Pointer(&size)))
	runtime.KeepAlive(name)
	if r == 0 {
		return 0, "", "", fmt.Errorf("WinINet: reading the proxy options of %s: InternetQueryOptionW: %w", connLabel(c), callErr)
	}
	flags = opts[0].dword()
	server = takeString(opts[1].str())
	bypass = takeString(opts[2].str())
	return flags, server, bypass, nil
}

// takeString copies a string WinINet allocated and frees it.
func takeString(p *uint16) string {
	if p == nil {
		return ""
	}
	s := windows.UTF16PtrToString(p)
	// GlobalFree returns NULL on success; its failure only leaks a few bytes.
	_, _, _ = procGlobalFree.Call(uintptr(unsafe.Pointer(p)))
	return s
}

func setConn(c string, opts []perConnOption) error {
	if len(opts) == 0 {
		return nil
	}
	name, err := connName(c)
	if err != nil {
		return fmt.Errorf("WinINet: connection %q: %w", c, err)
	}
	list := perConnOptionList{
		Connection:  name,
		OptionCount: uint32(len(opts)),
		Options:     &opts[0],
	}
	list.Size = uint32(unsafe.Sizeof(list))
	r, _, callErr := procSetOption.Call(0, internetOptionPerConnectionOption,
		uintptr(unsafe.Pointer(&list)), uintptr(list.Size))
	runtime.KeepAlive(name)
	runtime.KeepAlive(opts)
	if r == 0 {
		return fmt.Errorf("WinINet: setting the proxy options of %s: InternetSetOptionW: %w", connLabel(c), callErr)
	}
	return nil
}

func setOption(option uintptr) error {
	r, _, callErr := procSetOption.Call(0, option, 0, 0)
	if r == 0 {
		return fmt.Errorf("WinINet: InternetSetOptionW(%d): %w", option, callErr)
	}
	return nil
}

func connLabel(c string) string {
	if c == "" {
		return "the LAN connection"
	}
	return strconv.Quote(c)
}

// winConnections is the LAN ("") and every RAS phonebook entry (dial-up
// and VPN connections), each of which has its own proxy options.
func winConnections() ([]string, error) {
	conns := []string{""}
	if err := procRasEnumEntries.Find(); err != nil {
		return conns, nil // no RAS on this system: the LAN is all there is
	}
	entries := make([]rasEntryName, 1)
	// Bounded: the second call has the size the first one asked for; a
	// third covers an entry added in between.
	for attempt := 0; attempt < 3; attempt++ {
		entries[0].Size = uint32(unsafe.Sizeof(entries[0]))
		cb := uint32(len(entries)) * entries[0].Size
		var n uint32
		r, _, _ := procRasEnumEntries.Call(0, 0, uintptr(unsafe.Pointer(&entries[0])),
			uintptr(unsafe.Pointer(&cb)), uintptr(unsafe.Pointer(&n)))
		switch r {
		case 0:
			for i := 0; i < int(n) && i < len(entries); i++ {
				conns = append(conns, windows.UTF16ToString(entries[i].EntryName[:]))
			}
			return conns, nil
		case errorBufferTooSmall:
			want := int(cb/uint32(unsafe.Sizeof(entries[0]))) + 1
			entries = make([]rasEntryName, want)
		default:
			return nil, fmt.Errorf("listing dial-up and VPN connections: RasEnumEntriesW: %w", windows.Errno(r))
		}
	}
	return nil, fmt.Errorf("listing dial-up and VPN connections: %w", errRASGrowing)
}
