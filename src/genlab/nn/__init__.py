"""Networks (plain `nn.Module`s) and losses, free of any training logic."""
