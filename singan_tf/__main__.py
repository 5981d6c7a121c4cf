"""`python -m singan_tf ...` is the `singan-tf` command."""
from .cli import main

if __name__ == "__main__":
    main(prog_name="singan-tf")
