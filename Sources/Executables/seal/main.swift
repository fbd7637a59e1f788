import SEALTool

sealMain(Array(CommandLine.arguments.dropFirst()))
