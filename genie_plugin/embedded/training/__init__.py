"""Training the embedded default, one module per stage: ``data`` (the shapes pools), ``models``
(architectures and the noise schedule), ``classifiers`` (backbone and oracle), ``vae``,
``unet`` (UNet + text encoder on diffusers' training utilities), ``export`` (the diffusers
folder). ``common`` holds the config, the log, checkpoints and step planning that every stage
shares; :mod:`genie_plugin.embedded.train` runs them in order and is the command line."""
