"""`python -m singan_tf ...` is the `singan-tf` command."""
from .cli import main

main(prog_name="singan-tf")
