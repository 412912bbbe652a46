"""`python -m greenshift.dataplane`: the data-plane process (greenshift.dataplane.main)."""

from greenshift.dataplane.main import main

main()
