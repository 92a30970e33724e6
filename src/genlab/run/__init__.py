"""A run and its directory: the job genlab-train runs (`job`, `training`), every file it keeps
(`run_dir`, `record`, `metrics`, `checkpoints`), loading and testing a finished run (`loading`,
`evaluate`) and the sweep summary (`sweep`)."""
