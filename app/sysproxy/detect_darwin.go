package sysproxy

// The macOS backend: networksetup on every enabled network service.
const nativeName = "macos"

func nativeBackend() (Backend, error) { return backendOrErr(newMacOS()) }
