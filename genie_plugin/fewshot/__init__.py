"""Few-shot components: backbones (feature extractors), classifiers, episodes."""
