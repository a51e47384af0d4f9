package sysproxy

// The Windows backend: WinINet per-connection options of the LAN and every
// dial-up/VPN entry.
const nativeName = "windows"

func nativeBackend() (Backend, error) { return backendOrErr(newWinINet()) }
