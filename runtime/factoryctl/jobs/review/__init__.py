"""The merge gate: `gate` runs it, `batch` bisects, `reviewer` asks the model, `record` carries
decisions out, `person` takes a person's word, `tree` is its git."""
