from bertviz_landscape.landscape.entrypoint import main

if __name__ == "__main__":
    main()
