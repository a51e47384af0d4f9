module porthole

go 1.26.0

require github.com/rs/xid v1.6.0

require (
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/net v0.62.0 // indirect
)
