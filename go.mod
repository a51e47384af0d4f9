module porthole

go 1.26.0

require github.com/rs/xid v1.6.0
