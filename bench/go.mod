module porthole/bench

go 1.26.0
