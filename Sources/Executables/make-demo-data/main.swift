import MakeDemoDataTool

makeDemoDataMain(Array(CommandLine.arguments.dropFirst()))
