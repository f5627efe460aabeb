"""The wake side: the terminal chat and the HTTP server that answer with the current model and log every exchange."""
