"""One module per kind of source; each turns one server's state into samples of `families`."""
