
	warning