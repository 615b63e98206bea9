"""One module per routing algorithm; each exposes ``fit_*`` functions registered in
:data:`adaptive_router.training.train.TRAINERS`."""
