"""Measuring generated images: FID and KID with their real-vs-real floors, in the feature space of
a classifier genlab trains on the same data (or Inception-v3). Models never call this: the
`SampleQualityMetrics` callback hands it the images a model's test step generated."""
