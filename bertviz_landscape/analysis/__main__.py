from bertviz_landscape.analysis.entrypoint import main

if __name__ == "__main__":
    main()
