"""Lightning callbacks shared by every model."""
