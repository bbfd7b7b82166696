"""Pure math with no I/O: noise ratio -> timesteps, GeNIe-Ada selection, confidence intervals."""
