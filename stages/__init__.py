"""One module per DVC stage; each ``main()`` reads its params section and writes its outs."""
