// Package app is the desktop application without pixels: the command line
// over the config file (ParseArgs), the Controller that owns the proxy
// engine and the system proxy and that the tray, the main window and
// headless mode all drive, the engine's settings from the user's
// (EngineConfig), and the headless run. Its subpackages hold the config
// file, the system proxy, start at login and the single instance.
package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"porthole/app/config"
)

// ErrHelp is returned by ParseArgs for -h/--help after printing the usage.
var ErrHelp = flag.ErrHelp

// Options is what the command line asks for, on top of the config file.
type Options struct {
	Headless bool
	Version  bool
	// SystemProxy: point the system proxy at Porthole while it runs
	// (--system-proxy, or system_proxy in the config).
	SystemProxy bool
	// RestoreSystemProxy: only put back a system proxy setting a previous
	// run left behind, then exit.
	RestoreSystemProxy bool
	// PrintEnv: print the terminal environment for the proxy, then exit.
	PrintEnv   bool
	ConfigPath string
	Config     config.Config // the file's settings with the flags applied
	// ConfigProblem is a config file that cannot be used (config.Load's
	// *FileError, wrapping config.ErrInvalid); the file is left in place
	// and Config holds the defaults with the flags applied. The caller
	// must not run on them unasked: headless mode exits, the GUI keeps the
	// proxy stopped until the user chooses Start with defaults.
	ConfigProblem error
	// ConfigWarning is a usable config file that also holds fields this
	// version does not know (config.ErrUnknownFields); Config holds its
	// known settings. The caller tells the user and runs.
	ConfigWarning error
}

// ParseArgs reads the command line and the config file it names (or the
// default one). Flags given explicitly override the file.
func ParseArgs(args []string, stderr io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("porthole", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.Headless, "headless", false, "run the proxy core only, without the tray; logs go to stderr")
	fs.BoolVar(&o.Version, "version", false, "print the version and exit")
	sysProxy := fs.Bool("system-proxy", false, "point the system proxy at Porthole while it runs; put it back at exit")
	fs.BoolVar(&o.RestoreSystemProxy, "restore-system-proxy", false, "put back the system proxy a crashed Porthole left set, then exit")
	fs.BoolVar(&o.PrintEnv, "print-env", false, "print shell commands that point a terminal's programs at Porthole, then exit")
	fs.StringVar(&o.ConfigPath, "config", "", "config file (default: the user config dir's porthole/config.json)")
	listen := fs.String("listen", "", "address of the mixed HTTP/SOCKS5 port (default 127.0.0.1:8088)")
	mode := fs.String("mode", "", "direct, tunnel or rules")
	rulesFile := fs.String("rules", "", "rules file for rules mode (Porthole's JSON, Clash rule lines or a Clash config); reloaded when it changes")
	exit := fs.String("exit", "", "exit server URL for tunnel mode, wss://host/porthole")
	tokenFile := fs.String("token-file", "", "file holding the exit server's token (or set PORTHOLE_TOKEN)")
	exitPolicy := fs.String("exit-policy", "", "how tunnel mode picks among the config's exits: manual, fastest or failover")
	exitSelect := fs.String("exit-select", "", "the exit the manual policy uses (a name from the config's exits)")
	exitCA := fs.String("exit-ca", "", "PEM file of CA certificates to trust for the exit (a self-signed exit), besides the system's")
	username := fs.String("username", "", "require this username from clients (SOCKS5 and HTTP Basic)")
	passwordFile := fs.String("password-file", "", "file holding the password for --username")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (default info)")
	apiAddr := fs.String("api", "", "address of the control API that Clash dashboards speak to (default 127.0.0.1:9090; an empty value turns it off)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: porthole [flags]\n\nPorthole is a tray proxy: an HTTP and SOCKS5 proxy on one local port.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	if o.Version {
		return o, nil
	}
	if o.ConfigPath == "" {
		p, err := config.DefaultPath()
		if err != nil {
			return o, err
		}
		o.ConfigPath = p
	}
	cfg, err := config.Load(o.ConfigPath)
	switch {
	case err == nil:
	case errors.Is(err, config.ErrUnknownFields):
		o.ConfigWarning = err
	case errors.Is(err, config.ErrInvalid):
		o.ConfigProblem = err
	default:
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["listen"] {
		cfg.Listen = *listen
	}
	if set["mode"] {
		cfg.Mode = *mode
	}
	if set["exit"] {
		// One exit on the command line stands for the file's list.
		cfg.Exit, cfg.Exits, cfg.ExitSelected = *exit, nil, ""
	}
	if set["exit-policy"] {
		cfg.ExitPolicy = *exitPolicy
	}
	if set["exit-select"] {
		cfg.ExitSelected = *exitSelect
	}
	if set["rules"] {
		cfg.RulesFile = *rulesFile
	}
	if set["token-file"] {
		cfg.TokenFile = *tokenFile
	}
	if set["exit-ca"] {
		cfg.ExitCA = *exitCA
	}
	if set["api"] {
		cfg.API.Listen = *apiAddr
	}
	if set["log-level"] {
		cfg.LogLevel = *logLevel
	}
	if set["username"] {
		cfg.Username = *username
	}
	if set["password-file"] {
		pw, err := readSecretFile(*passwordFile)
		if err != nil {
			return o, fmt.Errorf("--password-file: %w", err)
		}
		cfg.Password = pw
	}
	if err := cfg.Validate(); err != nil {
		return o, err
	}
	o.SystemProxy = *sysProxy || cfg.SystemProxy
	o.Config = cfg
	return o, nil
}

// readSecretFile reads a password or token: the first line, trimmed.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return line, nil
}
