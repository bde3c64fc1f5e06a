"""Write the BFSI Customer 360 demo data: python demo-data/generate.py [--out DIR] [--scale N]."""

from flowforge.demo_data import main

raise SystemExit(main(script=__file__))
