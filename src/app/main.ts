// The chat demo; see issue 6.
