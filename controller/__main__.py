"""``python -m controller`` runs the ``rollback`` CLI."""

from controller.cli import main

if __name__ == "__main__":
    main()
