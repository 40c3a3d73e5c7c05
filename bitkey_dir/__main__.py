from bitkey_dir.cli import main

main()
