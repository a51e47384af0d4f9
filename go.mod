module porthole

go 1.26.0

require (
	github.com/rs/xid v1.6.0
	go.uber.org/goleak v1.3.0
	golang.org/x/net v0.62.0
)

require github.com/gorilla/websocket v1.5.3

require golang.org/x/sys v0.50.0
