import TrainJudgeTool

trainJudgeMain(Array(CommandLine.arguments.dropFirst()))
